"""Every connection the CLI (its seed and demo included) opens: one place that makes them safe behind a pooler.

Behind a transaction pool (pgbouncer ``pool_mode = transaction``) a client is linked to a server connection only for
the length of one transaction; the next transaction may run on another one. Two things then break silently:

- **Prepared statements.** psycopg prepares a query it has run 5 times on a connection (``prepare_threshold``) under
  a name such as ``_pg3_0``; the next transaction finds another server connection where that name does not exist, or
  already exists for another client ("prepared statement ... does not exist", ``DuplicatePreparedStatement``, "bind
  message supplies 0 parameters"). :func:`connect` turns them off for every connection (``prepare_threshold=None``),
  in every mode: the CLI is a short-lived client that runs a query a handful of times, so preparing buys it nothing.
- **LISTEN.** The LISTEN stays on the server connection it ran on, which the client is no longer linked to: nothing
  is ever heard. :func:`connect` with ``listen=True`` refuses when the pooler is declared transaction mode
  (:func:`pooler`: ``CHAT_ROLLOUT_POOLER`` or the CLI's ``--pooler``), and otherwise proves that a notification
  reaches the connection before the caller relies on it (:func:`probe_listen`), else raises :class:`ListenRefused`.

Session state (``SET``) leaks the other way: it stays on the server connection for the next client. Claim an actor
for a write transaction-locally, ``select set_config('chat.actor', %s, true)`` inside the write's transaction.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import psycopg
from psycopg import sql

#: The environment variable that declares the pooler between the CLI and PostgreSQL (the CLI's --pooler default).
POOLER_ENV = "CHAT_ROLLOUT_POOLER"
#: none: a direct connection; session: a session-mode pool (LISTEN works); transaction: a transaction-mode pool.
POOLER_MODES = ("none", "session", "transaction")
#: How long a LISTEN probe waits for its notification (a direct connection answers in milliseconds).
PROBE_TIMEOUT_S = 1.0

_declared: str | None = None  # set by the CLI's --pooler for one invocation (None: the environment decides)


def listen_hint(what: str) -> str:
    """What to do instead, for the command ``what`` that LISTENs."""
    return (
        f"Connect {what} directly to PostgreSQL, or through a session-mode pool: LISTEN does not survive transaction "
        "pooling. Point DATABASE_URL at the server itself (or at a pool_mode = session database) and leave "
        f"{POOLER_ENV} (--pooler) unset, none or session; every other command works through the transaction pool."
    )


class ListenRefused(Exception):
    """A LISTEN would hear nothing on this connection (a transaction pool): message, detail and hint, as a refusal."""

    def __init__(self, message: str, detail: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.detail, self.hint = message, detail, hint


def declare_pooler(mode: str | None) -> None:
    """The pooler the CLI was told about (``--pooler``); None gives the decision back to the environment."""
    global _declared
    if mode is not None and mode not in POOLER_MODES:
        raise ValueError(f"unknown pooler mode {mode!r}: one of {', '.join(POOLER_MODES)}")
    _declared = mode


def pooler() -> str:
    """The declared pooler: the CLI's ``--pooler``, else ``CHAT_ROLLOUT_POOLER``, else ``none``."""
    if _declared is not None:
        return _declared
    mode = os.environ.get(POOLER_ENV, "").strip().lower() or "none"
    if mode not in POOLER_MODES:
        raise ValueError(f"{POOLER_ENV}={mode!r} is not a pooler mode: one of {', '.join(POOLER_MODES)}")
    return mode


def refuse_listen_if_declared(what: str) -> None:
    """Raise :class:`ListenRefused` up front when the pooler is declared transaction mode."""
    if pooler() == "transaction":
        raise ListenRefused(
            f"{what} refused: it LISTENs, and the connection goes through a transaction-mode pool",
            f"{POOLER_ENV}=transaction (or --pooler transaction) declares a transaction pool between this client and "
            "PostgreSQL: the LISTEN would stay on a server connection this client is no longer linked to, and "
            "nothing would ever be heard. Nothing was done.",
            listen_hint(what),
        )


def connect(url: str, *, listen: bool = False, what: str = "LISTEN", **kwargs: Any) -> psycopg.Connection:
    """``psycopg.connect(url, **kwargs)`` with prepared statements off (pooler-safe).

    ``listen=True``: an autocommit connection for LISTEN; refused up front under a declared transaction pool, and
    probed (:func:`probe_listen`) before it is returned; ``what`` names the command in the refusal.
    """
    kwargs.setdefault("prepare_threshold", None)
    if not listen:
        return psycopg.connect(url, **kwargs)
    refuse_listen_if_declared(what)
    # the connection takes its own application name only once its LISTEN is proven: whoever waits for the
    # listener in pg_stat_activity must not mistake the probe's LISTEN for it
    name = kwargs.pop("application_name", None)
    if name is not None:
        kwargs["application_name"] = f"{name} (LISTEN probe)"
    conn = psycopg.connect(url, **{**kwargs, "autocommit": True})
    try:
        probe_listen(conn, url, what=what)
        if name is not None:
            conn.execute("select set_config('application_name', %s, false)", (name,))
    except BaseException:
        conn.close()
        raise
    return conn


def probe_listen(conn: psycopg.Connection, url: str, *, what: str = "LISTEN", timeout: float = PROBE_TIMEOUT_S) -> None:
    """Prove that a notification reaches ``conn`` (autocommit) before anyone relies on its LISTEN.

    ``conn`` LISTENs on a private probe channel; a second, short-lived connection NOTIFYs it. On a direct or a
    session-pooled connection the notification arrives in milliseconds. Through a transaction pool it never does,
    whatever the pool size: the LISTEN stayed on a server connection ``conn`` is no longer linked to, and the NOTIFY
    runs on another server connection, or on that very one while it serves the notifier (pool size 1), so the
    notification goes to the notifier, not to ``conn``. A notification that does not come within ``timeout`` seconds
    raises :class:`ListenRefused`. The probe channel is unlistened afterwards.
    """
    channel = f"chat_rollout_probe_{secrets.token_hex(6)}"
    token = secrets.token_hex(8)
    conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
    with psycopg.connect(
        url, autocommit=True, prepare_threshold=None, application_name="chat-rollout (notify probe)"
    ) as other:
        other.execute("select pg_notify(%s, %s)", (channel, token))
    heard, deadline = False, time.monotonic() + timeout
    while not heard and (left := deadline - time.monotonic()) > 0:
        heard = any(n.channel == channel and n.payload == token for n in conn.notifies(timeout=left, stop_after=1))
    conn.execute(sql.SQL("unlisten {}").format(sql.Identifier(channel)))
    if not heard:
        raise ListenRefused(
            f"{what} refused: a LISTEN on this connection hears nothing (a transaction-mode pool?)",
            f"a probe notification sent from a second connection did not reach this one within {timeout:g} s: the "
            "connection goes through a transaction-mode pool (pgbouncer pool_mode = transaction) or another proxy "
            "that does not keep a client on one server session, so the LISTEN stays on a server connection this "
            "client is no longer linked to. Nothing was done.",
            listen_hint(what),
        )
