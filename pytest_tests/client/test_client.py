"""SPEC 8: ``RolloutClient`` on a real server: a kill reaches 50 clients, ordering, gaps, the salt, the poll fallback.

Every client connects as the reader login (``chat_test_reader``): reading the state is all a client needs. Lost
notifications are simulated at the client (the instance's ``_on_notify`` replaced for chosen messages); the server,
its NOTIFYs and its state stay real.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from random import Random

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout.client import DEFAULT_SALT, RolloutClient, RolloutState, bucket
from chat_rollout.client import in_canary as rule
from chat_rollout.client.stats import Backoff
from pytest_tests.support.calls import arrange_state, login, set_state, state

READER = "chat_test_reader"
CLIENTS = 50


def reader_url(db_url: str) -> str:
    return make_conninfo(db_url, user=READER)


def user_in_canary(percent: int, salt: str = DEFAULT_SALT) -> str:
    """A user key whose bucket is inside ``percent`` % under ``salt``."""
    return next(f"user-{i}" for i in range(10_000) if bucket(salt, f"user-{i}") < percent * 100)


def server_state(conn: psycopg.Connection) -> RolloutState:
    row = state(conn)
    salt = DEFAULT_SALT
    try:
        salt = conn.execute("select salt from public.chat_get_v11_assignment_policy()").fetchone()[0]
    except psycopg.errors.UndefinedFunction:  # before revision 0011
        pass
    return RolloutState(
        stage=row["stage"],
        traffic_percent=Decimal(row["traffic_percent"]),
        kill_switch=row["kill_switch"],
        promotion_frozen=row["promotion_frozen"],
        version=row["version"],
        changed_at=row["changed_at"],
        salt=salt,
        changed_by=row["changed_by"],
        actor=row["actor"],
    )


def kill(db_url: str, stage: str, reason: str = "client test kill") -> int:
    with login(db_url, "chat_test_operator") as operator:
        return set_state(operator, stage, True, reason)["version"]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_kill_reaches_50_clients(db_url, conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    user = user_in_canary(50)
    # a short backoff: on a busy shared server a connect may briefly find no free slot, and then simply retries
    clients = [
        RolloutClient(reader_url(db_url), poll_interval=30, backoff_initial=0.2, backoff_max=1.0, application_name=name)
        for name in (f"client-{n}" for n in range(CLIENTS))
    ]
    try:
        for group in range(0, CLIENTS, 10):  # ten at a time: each connect briefly opens a LISTEN probe connection
            for c in clients[group : group + 10]:
                c.start()
            ready = [c.wait_ready(30) for c in clients[group : group + 10]]
            in_use = conn.execute("select count(*), current_setting('max_connections') from pg_stat_activity")
            assert all(ready), f"clients not ready; connections in use, max: {in_use.fetchone()}"
        assert all(c.in_canary(user) and c.state.stage == "canary_50" for c in clients)
        started = time.monotonic()
        version = kill(db_url, "canary_50")
        assert all(c.wait_for_version(version, 10) for c in clients)
        took = time.monotonic() - started
        assert all(c.state.kill_switch and not c.in_canary(user) for c in clients)
        assert all(c.stats["applied"] == 1 and c.stats["reloads"] == 1 for c in clients)  # pushed, not reloaded
        assert all(c.state == server_state(conn) for c in clients)
        print(f"FIGURE client_kill_fanout clients={CLIENTS} all_heard={took * 1000:.1f}ms")
    finally:
        for c in clients:
            c.close()


def test_the_state_is_the_servers_and_in_canary_is_sqls_rule(db_url, conn):
    arrange_state(conn, "promote", "canary_25", False, False)
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10)
        assert c.connected and c.backend_pid is not None and c.staleness == 0.0 and c.stale_since is None
        assert c.state == server_state(conn)
        assert c.state.traffic_percent == Decimal("25") and c.state.changed_at.tzinfo is not None
        assert c.stats["reload_reasons"]["initial"] == 1
        listening = conn.execute(
            "select usename, application_name from pg_stat_activity where pid = %s", (c.backend_pid,)
        ).fetchone()
        assert listening == (READER, "chat-rollout-client")
        for key in ("alice", "bob", "é", "e\u0301", "", "user-42"):  # no normalization: é and e+accent differ
            assert c.bucket(key) == bucket(c.state.salt, key)
            assert c.in_canary(key) == rule(c.bucket(key), Decimal("25"), False)
        has_sql = conn.execute("select to_regprocedure('public.chat_get_v11_assignment(text)')").fetchone()[0]
        if has_sql:
            for key in ("alice", "bob", "é", "e\u0301", "user-42"):
                row = conn.execute("select in_canary, bucket from chat_get_v11_assignment(%s)", (key,)).fetchone()
                assert row == (c.in_canary(key), c.bucket(key))


def test_a_kill_is_visible_before_any_callback_runs(db_url, conn):
    arrange_state(conn, "promote", "full", False, False)
    user = user_in_canary(100)
    seen: list[tuple] = []
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10) and c.in_canary(user)
        first = c.on_change(lambda old, new: seen.append(("first", c.in_canary(user), old.version, new.version)))
        c.on_change(lambda old, new: 1 / 0)  # a failing callback is logged, the thread goes on
        c.on_change(lambda old, new: seen.append(("third", c.in_canary(user), new.kill_switch)))
        version = kill(db_url, "full")
        assert c.wait_for_version(version, 10)
        assert wait_until(lambda: len(seen) == 2)
        assert seen == [("first", False, version - 1, version), ("third", False, True)]
        first()  # unregistered: no longer called
        arrange_state(conn, "rollback", "canary_5", True, True)
        assert c.wait_for_version(version + 1, 10)
        assert wait_until(lambda: len(seen) == 3)
        assert seen[-1] == ("third", False, True)
        assert c.state.stage == "canary_5" and c.connected


def test_old_and_duplicate_notifications_are_ignored(db_url, conn):
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10)
        held = c.state
        conn.execute(
            "select pg_notify('chat_v11_rollout', json_build_object('version', %s::bigint, 'stage', 'full',"
            " 'traffic_percent', 100, 'kill_switch', false, 'promotion_frozen', false,"
            " 'changed_at', '2026-01-01T00:00:00+00:00')::text)",
            (held.version,),
        )
        assert wait_until(lambda: c.stats["ignored"] == 1)
        assert c.state == held and c.stats["reloads"] == 1


def test_a_gap_in_versions_reloads(db_url, conn):
    with RolloutClient(reader_url(db_url), poll_interval=60) as c:
        assert c.wait_ready(10)
        start = c.state.version
        real = c._on_notify
        dropped: list = []

        def lose_the_first(notify):
            if notify.channel == "chat_v11_rollout" and not dropped:
                dropped.append(notify)
                return
            real(notify)

        c._on_notify = lose_the_first
        arrange_state(conn, "promote", "canary_1", False, False)  # start + 1: lost
        assert wait_until(lambda: dropped)
        assert c.state.version == start  # nobody told the client, and the next poll is a minute away
        version = kill(db_url, "canary_1")  # start + 2: a gap
        assert version == start + 2
        assert c.wait_for_version(version, 10)
        stats = c.stats
        assert stats["reload_reasons"]["gap"] == 1 and stats["applied"] == 0 and stats["reloads"] == 2
        assert c.state == server_state(conn)


def test_a_salt_change_reloads(db_url, conn):
    has_policy = conn.execute("select to_regprocedure('public.chat_set_v11_policy(text, jsonb)')").fetchone()[0]
    if not has_policy:
        pytest.skip("chat_set_v11_policy (revision 0011) is not in this database")
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10) and c.state.salt == DEFAULT_SALT
        before = c.bucket("alice")
        with login(db_url, "chat_test_admin") as admin:
            admin.execute("select chat_set_v11_policy('assignment_salt', '\"client-test-salt\"')")
        assert wait_until(lambda: c.state.salt == "client-test-salt")
        assert c.stats["reload_reasons"]["salt"] == 1
        assert c.bucket("alice") == bucket("client-test-salt", "alice") and c.bucket("alice") != before


def test_the_poll_delivers_a_kill_when_notifications_are_lost(db_url, conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    user = user_in_canary(50)
    with RolloutClient(reader_url(db_url), poll_interval=0.3) as c:
        assert c.wait_ready(10) and c.in_canary(user)
        lost: list = []
        c._on_notify = lost.append  # every notification lost from here on
        version = kill(db_url, "canary_50")
        assert c.wait_for_version(version, 5)
        assert not c.in_canary(user) and c.state == server_state(conn)
        stats = c.stats
        assert stats["reload_reasons"]["poll"] == 1 and stats["polls"] >= 1 and stats["notifications"] == 0
        assert lost, "the kill's notification did reach the connection (and was dropped by the test)"


def test_without_listen_the_client_polls(db_url, conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    user = user_in_canary(50)
    with RolloutClient(reader_url(db_url), poll_interval=0.3, listen=False) as c:
        assert c.wait_ready(10) and c.in_canary(user)
        version = kill(db_url, "canary_50")
        assert c.wait_for_version(version, 5)
        assert not c.in_canary(user) and c.stats["reload_reasons"]["poll"] == 1 and c.stats["notifications"] == 0
        assert c.staleness < 5  # without LISTEN the state is as current as the last poll


def test_before_the_first_state_nobody_is_in_the_canary():
    c = RolloutClient("postgresql://nobody@127.0.0.1:1/none", backoff_initial=0.2, connect_timeout=1)
    assert c.state is None and not c.in_canary("alice") and c.staleness == float("inf") and not c.connected
    assert c.bucket("alice") == bucket(DEFAULT_SALT, "alice")
    c.close()  # never started: closes its wake-up sockets
    with pytest.raises(RuntimeError, match="closed"):
        c.start()


def test_the_context_manager_stops_its_thread(db_url):
    before = threading.active_count()
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10)
        assert threading.active_count() == before + 1
    assert threading.active_count() == before and not c.connected


def test_an_unreadable_payload_reloads(db_url, conn):
    with RolloutClient(reader_url(db_url), poll_interval=30) as c:
        assert c.wait_ready(10)
        conn.execute("select pg_notify('chat_v11_rollout', 'not json')")
        assert wait_until(lambda: c.stats["reloads"] == 2)
        assert c.stats["reload_reasons"]["gap"] == 1 and c.state == server_state(conn) and c.connected


def test_the_backoff_doubles_up_to_the_cap_with_bounded_jitter():
    backoff = Backoff(1.0, 60.0, 0.2, Random(7))
    delays = [backoff.next_delay() for _ in range(9)]
    for delay, base in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60], strict=True):
        assert base <= delay <= base * 1.2
    backoff.reset()
    assert 1.0 <= backoff.next_delay() <= 1.2
    assert Backoff(1.0, 60.0, 0.0).next_delay() == 1.0
