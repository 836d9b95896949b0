"""Issue 16 (SPEC 7, "Behind a pooler"): every read, write and the CLI work through pgbouncer in transaction mode.

A private pgbouncer (``support/pgbouncer.py``: ``pool_mode = transaction``, its own process, any database name routed
to the suite's server, so to each test's own database) sits between the clients and PostgreSQL:

- (a) four concurrent clients (readers, an operator holding then killing, an ingest login writing samples), 300
  calls with prepared statements off: no error, and the state and the history are consistent afterwards;
- (b) the failure psycopg's defaults meet there, reproduced deterministically with a pool of one server connection
  (two clients prepare the same name on it), and measured under the concurrent load (printed, not asserted);
- (c) a claimed actor is transaction-local (``set_config('chat.actor', ..., true)``) and never reaches another
  client's row, while a session-level ``SET chat.actor`` does (why the docs stop teaching it);
- (d) ``chat-rollout watch`` (and the demo, which LISTENs) refuse with exit code 1 instead of listening to nothing;
- (e) the CLI's read and write commands work through the pool.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, history, invoke, login, state
from pytest_tests.support.pgbouncer import private_pgbouncer, unavailable_reason
from pytest_tests.support.samples import healthy_p0, put

CLIENTS = 4
CALLS_PER_CLIENT = 75  # 300 calls in all
LISTEN_REFUSAL = "LISTEN does not survive transaction pooling"


def _bouncer(pg_server, pool_size: int):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with private_pgbouncer(pg_server.url, pool_mode="transaction", pool_size=pool_size) as bouncer:
        yield bouncer


@pytest.fixture(scope="module")
def bouncer(pg_server):
    """pgbouncer, transaction mode, 2 server connections per (database, login): four clients share them."""
    yield from _bouncer(pg_server, 2)


@pytest.fixture(scope="module")
def single(pg_server):
    """pgbouncer, transaction mode, 1 server connection per (database, login): every client of a login shares it."""
    yield from _bouncer(pg_server, 1)


# --- (a) and (b): concurrent reads and writes through the pool -------------------------------------------------

READS = [
    "select * from public.chat_get_v11_rollout_state()",
    "select * from public.chat_get_v11_release_gates()",
    "select * from public.chat_get_v11_gate_checks()",
    "select * from public.chat_get_v11_rollout_history(%s)",
]


def _workload(url_as, anchor, **connect) -> tuple[Counter, int, dict]:
    """Four clients at once through the pool: two readers, an operator (holds, then one kill), an ingest login.

    ``url_as(login)`` is the pool's URL for a login; ``connect`` goes to psycopg.connect (prepare_threshold).
    Returns (errors by kind, calls made, what the operator's calls recorded).
    """
    errors: Counter = Counter()
    calls = Counter()
    recorded: dict = {"holds": 0, "kill": None}
    start = threading.Barrier(CLIENTS)
    lock = threading.Lock()

    def attempt(fn):
        with lock:
            calls["n"] += 1
        try:
            return fn()
        except psycopg.Error as exc:
            with lock:
                errors[f"{type(exc).__name__}: {str(exc).splitlines()[0]}"] += 1
            return None

    def reader(offset: int) -> None:
        with psycopg.connect(url_as("chat_test_reader"), autocommit=True, **connect) as c:
            start.wait()
            for i in range(CALLS_PER_CLIENT):
                query = READS[(i + offset) % len(READS)]
                attempt(lambda q=query: c.execute(q, (10,) if "%s" in q else None).fetchall())

    def operator() -> None:
        with psycopg.connect(url_as("chat_test_operator"), autocommit=True, **connect) as c:
            start.wait()
            for i in range(CALLS_PER_CLIENT - 1):
                row = attempt(lambda i=i: c.execute(
                    "select action from public.chat_set_v11_rollout_state('canary_1', false, %s)", (f"hold {i}",)
                ).fetchone())
                recorded["holds"] += row is not None and row[0] == "hold"
            row = attempt(lambda: c.execute(
                "select action, version from public.chat_set_v11_rollout_state('canary_1', true, 'kill under load')"
            ).fetchone())
            recorded["kill"] = row

    def ingest() -> None:
        with psycopg.connect(url_as("chat_test_ingest"), autocommit=True, **connect) as c:
            start.wait()
            for i in range(CALLS_PER_CLIENT):
                at = timedelta(seconds=-10 * (CALLS_PER_CLIENT - i))
                attempt(lambda at=at: put(c, healthy_p0(at, at, anchor)))

    threads = [threading.Thread(target=reader, args=(0,)), threading.Thread(target=reader, args=(2,)),
               threading.Thread(target=operator), threading.Thread(target=ingest)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung behind the pool"
    return errors, calls["n"], recorded


def test_four_clients_read_and_write_through_a_transaction_pool_without_an_error(bouncer, db_url, conn):
    arrange_state(conn, "promote", "canary_1", False, False)  # version 2
    anchor = scenarios.anchor_now()
    started = time.monotonic()
    errors, calls, recorded = _workload(
        lambda user: bouncer.url(db_url, user=user), anchor, prepare_threshold=None
    )
    print(f"FIGURE pooler transaction mode, prepare_threshold=None: {sum(errors.values())} errors in {calls} calls "
          f"({CLIENTS} clients, pool size {bouncer.pool_size}, {time.monotonic() - started:.1f} s)")
    assert calls == CLIENTS * CALLS_PER_CLIENT
    assert errors == Counter(), errors

    # the kill is recorded, last; every hold before it; versions contiguous and the chain verifies
    assert recorded["holds"] == CALLS_PER_CLIENT - 1
    assert recorded["kill"] is not None and recorded["kill"][0] == "kill"
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"]) == ("canary_1", True, True)
    rows = history(conn)
    assert [r["version"] for r in rows] == list(range(len(rows), 0, -1))
    assert s["version"] == len(rows) == 2 + CALLS_PER_CLIENT == recorded["kill"][1]
    assert rows[0]["action"] == "kill" and rows[0]["reason"] == "kill under load"
    assert Counter(r["action"] for r in rows) == Counter(init=1, promote=1, hold=CALLS_PER_CLIENT - 1, kill=1)
    assert {r["changed_by"] for r in rows[:-2]} == {"chat_test_operator"}
    assert conn.execute("select bool_and(ok) from public.chat_verify_v11_history()").fetchone()[0] is True
    stored = conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0]
    assert stored == CALLS_PER_CLIENT * len(healthy_p0(timedelta(0), timedelta(0), anchor))


def test_psycopg_defaults_break_behind_a_transaction_pool(bouncer, single, db_url, conn):
    """The contrast: psycopg prepares a query run 5 times under a name (_pg3_0) that lives on one server connection.

    Deterministic with one server connection: a second client prepares the same name on it. Under the concurrent
    load the count varies from run to run: it is printed (FIGURE), not asserted.
    """
    url = single.url(db_url, user="chat_test_reader")
    query = "select version from public.chat_get_v11_rollout_state() where %s"
    with psycopg.connect(url, autocommit=True) as a, psycopg.connect(url, autocommit=True) as b:
        for _ in range(6):
            a.execute(query, (True,))
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement, match='prepared statement "_pg3_0"'):
            for _ in range(6):
                b.execute(query, (True,))
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as a, \
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as b:  # fmt: skip
        for _ in range(6):
            assert a.execute(query, (True,)).fetchone() == (1,)
            assert b.execute(query, (True,)).fetchone() == (1,)

    arrange_state(conn, "promote", "canary_1", False, False)
    errors, calls, _ = _workload(lambda user: bouncer.url(db_url, user=user), scenarios.anchor_now())
    kinds = "; ".join(f"{n}x {kind}" for kind, n in errors.most_common())
    print(f"FIGURE pooler transaction mode, psycopg defaults (prepare_threshold=5): {sum(errors.values())} errors "
          f"in {calls} calls ({CLIENTS} clients, pool size {bouncer.pool_size}): {kinds}")


# --- (c) the claimed actor ----------------------------------------------------------------------------------------

def _write(url: str, reason: str, actor: str | None = None, kill: bool = False) -> tuple[int, int]:
    """One hold (or kill) as chat_test_operator in its own transaction; (version, server backend pid)."""
    with login(url, "chat_test_operator", prepare_threshold=None) as c, c.transaction():
        if actor is not None:
            c.execute("select set_config('chat.actor', %s, true)", (actor,))
        pid = c.execute("select pg_backend_pid()").fetchone()[0]
        version = c.execute(
            "select version from public.chat_set_v11_rollout_state('canary_1', %s, %s)", (kill, reason)
        ).fetchone()[0]
    return version, pid


def _row(conn: psycopg.Connection, version: int) -> dict:
    return next(r for r in history(conn) if r["version"] == version)


def test_a_claimed_actor_is_transaction_local_and_never_reaches_another_client(single, db_url, conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    url = single.url(db_url)
    a_version, a_pid = _write(url, "hold by A", actor="deploy-bot")
    b_version, b_pid = _write(url, "hold by B")
    c_version, c_pid = _write(url, "kill by B", kill=True)
    assert a_pid == b_pid == c_pid  # one server connection served all three: a leak would have shown
    a, b, c = _row(conn, a_version), _row(conn, b_version), _row(conn, c_version)
    assert (a["actor"], a["changed_by"]) == ("deploy-bot", "chat_test_operator")
    assert (b["actor"], b["changed_by"]) == (None, "chat_test_operator")
    assert (c["action"], c["actor"]) == ("kill", None)
    assert state(conn)["actor"] is None


def test_a_session_level_set_leaks_to_the_next_client_of_the_server_connection(single, db_url, conn):
    """Why the docs teach set_config(..., true): a session SET stays on the pooled server connection."""
    arrange_state(conn, "promote", "canary_1", False, False)
    url = single.url(db_url)
    with login(url, "chat_test_operator", prepare_threshold=None) as a:
        a.execute("set chat.actor = 'deploy-bot'")
    b_version, _ = _write(url, "hold by B, who claims nobody")
    assert _row(conn, b_version)["actor"] == "deploy-bot"  # B's row names A's actor: the leak
    with login(url, "chat_test_operator", prepare_threshold=None) as a:
        a.execute("reset chat.actor")  # the pool's server connection, as clean as it was


# --- (d) LISTEN is refused, never silent ----------------------------------------------------------------------

@pytest.mark.parametrize("pool", ["bouncer", "single"])
def test_watch_through_a_transaction_pool_is_detected_and_refused(pool, request, db_url):
    through = request.getfixturevalue(pool)
    started = time.monotonic()
    result = invoke(["watch", "--count", "1"], through.url(db_url))
    took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "listening" not in out
    assert "ERROR: watch refused: a LISTEN on this connection hears nothing" in out
    assert "DETAIL: a probe notification sent from a second connection did not reach this one within 1 s" in out
    assert f"HINT: Connect watch directly to PostgreSQL, or through a session-mode pool: {LISTEN_REFUSAL}" in out
    assert "Traceback" not in out
    assert took < 10, took


def test_watch_with_the_pooler_declared_transaction_is_refused_up_front(bouncer, db_url):
    for args, env in ((["watch"], {"CHAT_ROLLOUT_POOLER": "transaction"}),
                      (["--pooler", "transaction", "watch"], {"CHAT_ROLLOUT_POOLER": None})):  # fmt: skip
        result = invoke(args, bouncer.url(db_url), **env)
        assert result.exit_code == 1, result.output
        out = " ".join(result.output.split())
        assert "listening" not in out
        assert "ERROR: watch refused: it LISTENs, and the connection goes through a transaction-mode pool" in out
        assert "CHAT_ROLLOUT_POOLER=transaction (or --pooler transaction)" in out
        assert LISTEN_REFUSAL in out


def test_the_demo_with_the_pooler_declared_transaction_is_refused_before_it_touches_anything(bouncer, db_url):
    result = invoke(["demo"], bouncer.url(db_url), CHAT_ROLLOUT_POOLER="transaction")
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "ERROR: demo refused: it LISTENs" in out and LISTEN_REFUSAL in out
    assert "recreating database" not in out


def test_an_unknown_pooler_mode_is_a_usage_error(db_url):
    result = invoke(["status"], db_url, CHAT_ROLLOUT_POOLER="statement")
    assert result.exit_code == 2, result.output
    assert "--pooler" in result.output


# --- (e) the CLI through the pool -----------------------------------------------------------------------------

def test_the_cli_reads_and_writes_through_a_transaction_pool(bouncer, db_url, conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    url = bouncer.url(db_url)

    def ok(*args: str) -> str:
        result = invoke(list(args), url, CHAT_ROLLOUT_POOLER="transaction")
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        return " ".join(result.output.split())

    assert "canary_1" in ok("status")
    assert "recorded: hold │ stage canary_1 (1.00 %) │ kill switch off │ promotion frozen │ version 3" in ok(
        "hold", "hold behind the pool")
    assert "recorded: kill │ stage canary_1 (1.00 %) │ kill switch ON │ promotion frozen │ version 4" in ok(
        "kill", "kill behind the pool")
    ok("incident", "open", "P2", "pooler drill")
    assert "pooler drill" in ok("incident", "list")
    assert "healthy_canary" in ok("seed", "--list")
    seeded = ok("seed", "healthy_canary", "--batch-size", "200")  # many batches on one connection, one transaction
    assert "wrote " in seeded and "samples through chat_put_v11_metric_samples" in seeded
    assert "version 4" in ok("status")

    s = state(conn)
    assert (s["version"], s["kill_switch"], s["changed_by"]) == (4, True, "postgres")
    assert [r["action"] for r in history(conn, 2)] == ["kill", "hold"]
    assert conn.execute("select count(*) from chat_v11.incident").fetchone()[0] == 1
