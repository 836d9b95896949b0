"""``RolloutClient``: the rollout state in an application's memory, pushed by NOTIFY, polled as a fallback.

One background thread owns the database connection (:class:`chat_rollout.client.link.Link`). It LISTENs, loads the
state, then blocks in ``select()`` on the connection and a wake-up socket, with the time to the next poll as the
timeout: no busy loop, a prompt ``close()``. A ``chat_v11_rollout`` notification with ``version == held + 1`` is
applied from its payload; an older or equal one is ignored; a newer one (a gap: a notification was missed) reloads.
A ``chat_v11_assignment`` notification (the salt changed) reloads. Every ``poll_interval`` seconds one query reads
state and salt and applies them when they differ (the fallback when notifications are lost). Any connection error
keeps the last state (fail-static), records since when it is stale, and reconnects after 1, 2, 4 … 60 s plus jitter.

The new state is published by one reference assignment before any callback runs: a kill answers ``in_canary`` False
on every thread before the first callback starts. Callbacks run on the client's thread; their exceptions are logged.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from chat_rollout import connect as connecting
from chat_rollout.client.assignment import DEFAULT_SALT, bucket
from chat_rollout.client.link import Link
from chat_rollout.client.state import RolloutState, next_step
from chat_rollout.client.stats import Backoff, Stats

log = logging.getLogger("chat_rollout.client")

Callback = Callable[[RolloutState | None, RolloutState], Any]


class RolloutClient:
    """The rollout state of one database, kept current in memory (thread-safe; a context manager)."""

    def __init__(
        self,
        dsn: str,
        *,
        poll_interval: float = 5.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        jitter: float = 0.2,
        connect_timeout: float = 5.0,
        application_name: str = "chat-rollout-client",
        listen: bool = True,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        if listen:
            connecting.refuse_listen_if_declared("RolloutClient")  # a declared transaction pool: refused up front
        self.dsn, self.poll_interval, self.listen = dsn, poll_interval, listen
        self.connect_timeout, self.application_name = connect_timeout, application_name
        self._backoff = Backoff(backoff_initial, backoff_max, jitter)
        self._stats = Stats()
        self._state: RolloutState | None = None
        self._changed = threading.Condition()
        self._callbacks: list[Callback] = []
        self._callbacks_lock = threading.Lock()
        self._pending: deque[psycopg.Notify] = deque()
        self._link: Link | None = None
        self._backend_pid: int | None = None
        self._confirmed: datetime | None = None  # the last moment the held state was known current
        self._stale_since: datetime | None = None
        self._closing = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None  # why the client stopped for good (a LISTEN refused), else None

    # -- the public face ---------------------------------------------------------------------------------------
    def start(self) -> RolloutClient:
        if self._thread is not None or self._closing.is_set():
            raise RuntimeError("RolloutClient already started or closed: make a new one")
        self._thread = threading.Thread(target=self._run, name=f"{self.application_name} ({id(self):x})", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread and close the connection; returns promptly even while reconnecting."""
        self._closing.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.connect_timeout + 5 if timeout is None else timeout)
        if self._thread is None or not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def __enter__(self) -> RolloutClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> RolloutState | None:
        return self._state

    def in_canary(self, user_key: str) -> bool:
        """Whether this user gets the new version now: False before the first state and whenever killed."""
        state = self._state  # one read: the whole answer comes from one state
        return state is not None and state.in_canary(user_key)

    def bucket(self, user_key: str) -> int:
        """The user's bucket (0..9999) under the held salt (the default salt before the first state)."""
        state = self._state
        return bucket(DEFAULT_SALT if state is None else state.salt, user_key)

    def on_change(self, callback: Callback) -> Callable[[], None]:
        """Run ``callback(old, new)`` after each change (on the client's thread); returns the unregister function."""
        with self._callbacks_lock:
            self._callbacks = [*self._callbacks, callback]

        def unregister() -> None:
            with self._callbacks_lock:
                self._callbacks = [c for c in self._callbacks if c is not callback]

        return unregister

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def backend_pid(self) -> int | None:
        return self._backend_pid if self._link is not None else None

    @property
    def stale_since(self) -> datetime | None:
        """Since when the held state is not known to be current (None while it is, or before any state)."""
        return self._stale_since

    @property
    def staleness(self) -> float:
        """0.0 while the connection is up (LISTEN mode); else seconds since the state was last known current.

        Without LISTEN (``listen=False``) the state is only as current as the last poll: seconds since it.
        Infinity before any state was ever loaded.
        """
        since = self._stale_since
        if since is None:
            if self._state is None:
                return float("inf")
            if self.listen or self._confirmed is None:
                return 0.0
            since = self._confirmed
        return max(0.0, (datetime.now(UTC) - since).total_seconds())

    @property
    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once a first state is loaded; re-raises why the client stopped for good (a refused LISTEN)."""
        return self._wait(lambda: self._state is not None, timeout)

    def wait_for_version(self, version: int, timeout: float = 10.0) -> bool:
        return self._wait(lambda: self._state is not None and self._state.version >= version, timeout)

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            done = self._changed.wait_for(lambda: predicate() or self.error is not None, timeout)
        if self.error is not None and not predicate():
            raise self.error
        return bool(done) and predicate()

    # -- the client's thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        first = True
        while not self._closing.is_set():
            try:
                self._link = self._open()
            except connecting.ListenRefused as exc:
                log.error("%s\n%s\n%s", exc.message, exc.detail, exc.hint)
                with self._changed:
                    self.error = exc
                    self._changed.notify_all()
                return
            except Exception as exc:  # psycopg.Error, OSError: the server is away; anything else: log it, go on
                self._stats.add("errors")
                log.warning("chat-rollout client: cannot connect: %s", exc, exc_info=not _expected(exc))
                self._sleep_backoff()
                continue
            self._backend_pid = self._link.backend_pid
            try:
                if not first:
                    self._stats.add("reconnects")
                self._reload("initial" if first else "reconnect")
                first = False
                self._backoff.reset()
                self._serve()
            except Exception as exc:  # the thread never dies of an error: keep the state, reconnect
                if not self._closing.is_set():
                    self._stats.add("errors")
                    log.warning(
                        "chat-rollout client: connection lost, keeping version %s: %s",
                        self._version(),
                        exc,
                        exc_info=not _expected(exc),
                    )
            finally:
                self._drop()
            if not self._closing.is_set():
                self._sleep_backoff()

    def _open(self) -> Link:
        return Link(
            self.dsn,
            listen=self.listen,
            connect_timeout=self.connect_timeout,
            application_name=self.application_name,
            statement_timeout=max(self.connect_timeout, 1.0),
            deliver=lambda n: self._on_notify(n),  # looked up on each call: a test may replace it on the instance
        )

    def _on_notify(self, notify: psycopg.Notify) -> None:
        """Queue one notification (called inside psycopg while a query runs, or by Link.wait)."""
        self._pending.append(notify)

    def _serve(self) -> None:
        link = self._link
        assert link is not None
        next_poll = time.monotonic() + self.poll_interval
        while not self._closing.is_set():
            link.drain()  # anything libpq read along with a query's results
            self._process_pending()
            left = next_poll - time.monotonic()
            if left <= 0:
                self._stats.add("polls")
                self._reload("poll", quiet=True)
                next_poll = time.monotonic() + self.poll_interval
                continue
            if link.wait(self._wake_r, left):
                self._wake_r.recv(64)

    def _process_pending(self) -> None:
        while self._pending:
            notify = self._pending.popleft()
            self._stats.add("notifications")
            step, value = next_step(self._state, notify)
            if step == "ignore":
                self._stats.add("ignored")
            elif step == "apply":
                self._stats.add("applied")
                self._publish(value)
            elif step == "reload":
                self._reload(value)

    def _reload(self, reason: str, *, quiet: bool = False) -> None:
        """Read state and salt; publish them when they differ from the held ones. A poll counts only a change."""
        assert self._link is not None
        new = self._link.load()
        self._confirmed = datetime.now(UTC)
        self._stale_since = None
        held = self._state
        changed = held is None or (new.version, new.salt) != (held.version, held.salt)
        if not quiet or changed:
            self._stats.reload(reason)
        if changed:
            if held is not None and new.version < held.version:
                log.warning(
                    "chat-rollout client: the server's version %s is older than the held %s (a restore?)",
                    new.version,
                    held.version,
                )
            self._publish(new)

    def _publish(self, new: RolloutState) -> None:
        old = self._state
        self._state = new  # the swap: every thread sees the new state from here on, before any callback
        self._confirmed = datetime.now(UTC)
        with self._changed:
            self._changed.notify_all()
        for callback in self._callbacks:
            try:
                callback(old, new)
            except Exception:
                log.exception("chat-rollout client: an on_change callback failed (version %s)", new.version)

    def _drop(self) -> None:
        link, self._link = self._link, None
        self._pending.clear()
        if self._state is not None and self._stale_since is None:
            self._stale_since = self._confirmed or datetime.now(UTC)
        if link is not None:
            try:
                link.close()
            except Exception:  # closing a broken connection must not stop the thread
                log.debug("closing the broken connection failed", exc_info=True)

    def _sleep_backoff(self) -> None:
        if self._state is not None and self._stale_since is None:
            self._stale_since = self._confirmed or datetime.now(UTC)
        self._closing.wait(self._backoff.next_delay())

    def _version(self) -> int | None:
        state = self._state
        return None if state is None else state.version


def _expected(exc: BaseException) -> bool:
    """A database or network error (logged in one line), not a bug (logged with its traceback)."""
    return isinstance(exc, psycopg.Error | OSError)
