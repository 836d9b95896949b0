"""SPEC 8 fail-static: ``RolloutClient`` survives a network cut and a server restart, keeps its state, says how stale.

The network cut terminates the client's own backend on the suite's server (``pg_terminate_backend``). The restart
stops and starts a private cluster of our own (``support/cluster.py``), never the suite's server; it is skipped with
the reason where no private cluster can run. A LISTEN through a transaction pool is refused, never silent.
"""

from __future__ import annotations

import time

import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout.client import RolloutClient
from chat_rollout.connect import POOLER_ENV, ListenRefused
from pytest_tests.support import pgbouncer
from pytest_tests.support.calls import arrange_state, login, set_state
from pytest_tests.support.cluster import private_cluster, server_major, unavailable_reason

READER = "chat_test_reader"


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_a_network_cut_keeps_the_state_reports_staleness_and_reconnects(db_url, conn):
    arrange_state(conn, "promote", "full", False, False)
    url = make_conninfo(db_url, user=READER)
    # a 1 s first delay without jitter leaves the test a window to see the client disconnected
    with RolloutClient(url, poll_interval=30, backoff_initial=1.0, jitter=0) as c:
        assert c.wait_ready(10) and c.in_canary("alice")
        held, pid = c.state, c.backend_pid
        assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        assert wait_until(lambda: not c.connected, 5)
        assert c.state == held and c.in_canary("alice")  # fail-static
        assert c.stale_since is not None and c.backend_pid is None
        time.sleep(0.1)
        assert c.staleness > 0.05
        with login(db_url, "chat_test_operator") as operator:
            missed = set_state(operator, "full", True, "kill while the client is cut off")["version"]
        assert c.wait_for_version(missed, 10)  # the reload after the reconnect brings it
        assert c.connected and c.backend_pid not in (None, pid) and c.staleness == 0.0 and c.stale_since is None
        stats = c.stats
        assert stats["reconnects"] == 1 and stats["errors"] >= 1 and stats["reload_reasons"]["reconnect"] == 1
        assert not c.in_canary("alice")
        arrange_state(conn, "rollback", "canary_1", True, True)  # a later change is heard on the new LISTEN
        assert c.wait_for_version(missed + 1, 10)
        assert c.stats["applied"] == 1 and c.state.stage == "canary_1"


@pytest.fixture(scope="module")
def cluster(pg_server):
    major = server_major(pg_server)
    reason = unavailable_reason(major)
    if reason is not None:
        pytest.skip(f"no private PostgreSQL {major} cluster here: {reason}")
    with private_cluster(major) as c:
        url = c.create_migrated_database("chat_client")
        with c.connect("chat_client") as owner:
            owner.execute(f"create role {READER} login")
            owner.execute(f"grant chat_rollout_reader to {READER}")
            owner.execute("create role chat_test_operator login")
            owner.execute("grant chat_rollout_operator to chat_test_operator")
        yield c, url


def test_a_server_restart_is_survived(cluster):
    c_, url = cluster
    reader = make_conninfo(url, user=READER)
    with c_.connect("chat_client") as owner:
        arrange_state(owner, "promote", "canary_50", False, False)
    client = RolloutClient(reader, poll_interval=30, backoff_initial=0.2, backoff_max=1.0, connect_timeout=2)
    patient = RolloutClient(reader, poll_interval=30, backoff_initial=30, jitter=0)  # sleeps 30 s once cut off
    with client, patient:
        assert client.wait_ready(10) and patient.wait_ready(10)
        held = client.state
        c_.stop("fast")
        try:
            assert wait_until(lambda: not client.connected and not patient.connected, 10)
            time.sleep(1.5)  # several failed reconnects, each refused at once
            assert client.state == held and client.stats["errors"] >= 2 and client.stats["reconnects"] == 0
            first = client.staleness
            time.sleep(0.2)
            assert client.staleness > first > 1.0 and client.stale_since is not None
            started = time.monotonic()
            patient.close()  # waiting out its backoff: close() must not
            assert time.monotonic() - started < 1.0 and not patient._thread.is_alive()
        finally:
            c_.start()
        assert wait_until(lambda: client.connected and client.staleness == 0.0, 10)
        assert client.stats["reconnects"] == 1 and client.stats["reload_reasons"]["reconnect"] == 1
        assert client.state == held
        with login(url, "chat_test_operator") as operator:
            version = set_state(operator, "canary_50", True, "kill after the restart")["version"]
        assert client.wait_for_version(version, 10) and client.state.kill_switch
        assert client.stats["applied"] == 1  # heard on the new LISTEN, not polled


def test_close_returns_promptly_when_the_server_never_answered():
    c = RolloutClient("postgresql://postgres@127.0.0.1:1/none", backoff_initial=30, connect_timeout=1).start()
    assert not c.wait_ready(0.5)
    started = time.monotonic()
    c.close()
    assert time.monotonic() - started < 1.0 and not c._thread.is_alive()
    assert c.stats["errors"] >= 1 and c.state is None and not c.in_canary("alice")


def test_a_declared_transaction_pool_is_refused(monkeypatch, db_url):
    monkeypatch.setenv(POOLER_ENV, "transaction")
    with pytest.raises(ListenRefused, match="transaction-mode pool"):
        RolloutClient(db_url)
    with RolloutClient(make_conninfo(db_url, user=READER), listen=False, poll_interval=0.5) as c:  # polling is fine
        assert c.wait_ready(10)


def test_a_listen_through_a_transaction_pool_is_refused(pg_server, db_url):
    reason = pgbouncer.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with pgbouncer.private_pgbouncer(pg_server.url, pool_mode="transaction", pool_size=1) as bouncer:
        c = RolloutClient(bouncer.url(db_url, user=READER)).start()
        try:
            with pytest.raises(ListenRefused, match="hears nothing"):
                c.wait_ready(15)
            assert not c.in_canary("alice") and c._thread is not None
            c._thread.join(5)
            assert not c._thread.is_alive()  # refused for good: no retry loop against the pool
        finally:
            c.close()
