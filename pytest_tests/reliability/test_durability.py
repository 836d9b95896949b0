"""SPEC 4.6 durability: an acknowledged state change survives a crash, an unacknowledged one leaves nothing.

Crashes happen on a private cluster (pytest_tests/support/cluster.py), never on the shared suite server: an immediate
shutdown and a SIGKILLed backend in the middle of a stream of calls from several clients, then crash
recovery. A call interrupted by the crash has an unknown outcome (it may have committed just before its
acknowledgement was lost, as with any database); every acknowledged one must be there, every refused one
must not, and nothing else may appear.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from pytest_tests.support.calls import history, snapshot, state
from pytest_tests.support.cluster import private_cluster, server_major, unavailable_reason

CLIENTS = 4
_names = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(pg_server):
    major = server_major(pg_server)
    reason = unavailable_reason(major)
    if reason is not None:
        pytest.skip(f"no private PostgreSQL {major} cluster here: {reason}")
    # a 10 s WAL writer delay makes an asynchronous commit sit in shared memory long enough to be lost
    with private_cluster(major, wal_writer_delay="'10s'", wal_writer_flush_after="'1GB'") as c:
        c.create_migrated_database("chat_tpl")
        yield c


@pytest.fixture
def crash_db(cluster):
    """A fresh migrated database on the private cluster (the cluster is up again after every test)."""
    if not cluster.is_running():
        cluster.start()
    name = f"chat_d{next(_names)}"
    yield name, cluster.clone_database("chat_tpl", name)
    if not cluster.is_running():
        cluster.start()
    cluster.wait_ready()
    with cluster.connect() as c:
        c.execute(f'drop database if exists "{name}" with (force)')


class Stream:
    """CLIENTS threads calling chat_set_v11_rollout_state in a loop until their connection dies.

    Two calls in three are kills (always accepted), one in three a resume to a higher stage (always
    refused, RO008, once the kill switch is on). Every reason is unique, so a history row names its call.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, int] = {}  # reason -> returned version
        self.refused: dict[str, str] = {}  # reason -> sqlstate
        self.in_flight: dict[int, str] = {}  # client -> reason of the call the crash interrupted
        self.unexpected: list[BaseException] = []
        self.started = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def _client(self, n: int) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=True, application_name=f"durability-client-{n}")
        except psycopg.Error as exc:  # pragma: no cover - reported by the test
            self.unexpected.append(exc)
            return
        with conn:
            for i in itertools.count():
                kill = i % 3 != 2
                reason = f"client {n} call {i} {'kill' if kill else 'resume upwards'}"
                stage, switch = ("off", True) if kill else ("canary_5", False)
                self.started.set()
                try:
                    version = conn.execute(
                        "select version from chat_set_v11_rollout_state(%s, %s, %s)", (stage, switch, reason)
                    ).fetchone()[0]
                except (psycopg.OperationalError, psycopg.errors.AdminShutdown, psycopg.errors.CrashShutdown):
                    with self._lock:
                        self.in_flight[n] = reason
                    return
                except psycopg.Error as exc:
                    if exc.diag.sqlstate is None or conn.closed or conn.broken:
                        with self._lock:
                            self.in_flight[n] = reason
                        return
                    with self._lock:
                        self.refused[reason] = exc.diag.sqlstate
                    continue
                with self._lock:
                    self.acked[reason] = version

    def start(self) -> None:
        for t in self.threads:
            t.start()
        assert self.started.wait(10)

    def join(self) -> None:
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a client hung after the crash"


def assert_history_matches(url: str, stream: Stream, start_version: int) -> dict:
    """After recovery: acked calls present with their versions, refused ones absent, versions contiguous."""
    assert not stream.unexpected, stream.unexpected
    assert stream.acked, "no call was acknowledged before the crash: the test proved nothing"
    with psycopg.connect(url, autocommit=True) as conn:
        rows = history(conn, 100000)
        final = state(conn)
        verify = conn.execute("select ok, rows_checked, problem from chat_verify_v11_history()").fetchone()
    by_version = {r["version"]: r for r in rows}
    versions = sorted(by_version)
    assert versions == list(range(1, final["version"] + 1)), "history versions are not contiguous"
    assert verify[0] is True, verify
    for reason, version in stream.acked.items():
        assert version in by_version, f"acknowledged call {reason!r} (version {version}) lost in the crash"
        assert by_version[version]["reason"] == reason
    new_reasons = [r["reason"] for r in rows if r["version"] > start_version]
    assert len(new_reasons) == len(set(new_reasons))
    in_flight = set(stream.in_flight.values())
    for reason in new_reasons:
        assert reason in stream.acked or reason in in_flight, f"{reason!r} is in the history but was never acked"
        assert reason not in stream.refused
    committed_unacked = [r for r in new_reasons if r in in_flight]
    assert len(committed_unacked) <= len(stream.in_flight)
    assert final["version"] == start_version + len(new_reasons)
    assert final["kill_switch"] is True
    return {
        "acked": len(stream.acked),
        "refused": len(stream.refused),
        "interrupted": len(stream.in_flight),
        "interrupted_but_committed": len(committed_unacked),
    }


def test_immediate_shutdown_during_a_stream_of_calls_loses_no_acknowledged_change(cluster, crash_db):
    name, url = crash_db
    with psycopg.connect(url, autocommit=True) as conn:
        start_version = state(conn)["version"]
    log_start = len(cluster.log_text())
    stream = Stream(url)
    stream.start()
    time.sleep(0.6)
    cluster.stop("immediate")
    stream.join()
    cluster.start()
    assert "automatic recovery in progress" in cluster.log_text()[log_start:]  # crash recovery ran
    counts = assert_history_matches(url, stream, start_version)
    print(f"immediate shutdown: {counts}")
    # the kill switch works on the recovered server
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select kill_switch from chat_set_v11_rollout_state('off', true, 'after')").fetchone()[0]


def test_sigkill_of_a_backend_in_a_call_restarts_the_server_and_loses_no_acknowledged_change(cluster, crash_db):
    name, url = crash_db
    with psycopg.connect(url, autocommit=True) as conn:
        start_version = state(conn)["version"]
    log_start = len(cluster.log_text())
    stream = Stream(url)
    stream.start()
    time.sleep(0.4)
    victim = None
    with cluster.connect(name) as watcher:
        deadline = time.monotonic() + 5
        while victim is None and time.monotonic() < deadline:
            row = watcher.execute(
                "select pid from pg_stat_activity where application_name like 'durability-client-%%' "
                "and state = 'active' and query like '%%chat_set_v11_rollout_state%%' limit 1"
            ).fetchone()
            victim = row[0] if row else None
        if victim is None:  # no call caught in flight: any client backend will do
            victim = watcher.execute(
                "select pid from pg_stat_activity where application_name like 'durability-client-%%' limit 1"
            ).fetchone()[0]
    cluster.kill_backend(victim)
    stream.join()
    waited = cluster.wait_ready(name)
    log = cluster.log_text()[log_start:]
    assert f"(PID {victim}) was terminated by signal 9" in log
    assert "all server processes terminated; reinitializing" in log
    assert "automatic recovery in progress" in log
    counts = assert_history_matches(url, stream, start_version)
    print(f"SIGKILL of backend {victim}: {counts}, server back after {waited:.2f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select kill_switch from chat_set_v11_rollout_state('off', true, 'after')").fetchone()[0]


def test_terminating_a_session_blocked_on_the_state_lock_leaves_nothing_behind(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"30 seconds\"')")
    before = snapshot(conn)
    outcome: dict = {}

    def victim() -> None:
        with psycopg.connect(db_url, autocommit=True, application_name="victim") as c:
            outcome["pid"] = c.info.backend_pid
            try:
                c.execute("select * from chat_set_v11_rollout_state('off', true, 'blocked kill')")
                outcome["result"] = "returned"
            except psycopg.Error as exc:
                outcome["result"] = exc.diag.sqlstate or type(exc).__name__

    with psycopg.connect(db_url) as blocker:
        blocker.execute("select * from chat_v11.rollout_state for update")
        t = threading.Thread(target=victim)
        t.start()
        deadline = time.monotonic() + 10
        waiting = None
        while waiting is None and time.monotonic() < deadline:
            waiting = conn.execute(
                "select pid from pg_stat_activity where application_name = 'victim' and wait_event_type = 'Lock'"
            ).fetchone()
            time.sleep(0.02)
        assert waiting, "the victim never blocked on the state lock"
        assert conn.execute("select pg_terminate_backend(%s, 5000)", (waiting[0],)).fetchone()[0]
        t.join(10)
        blocker.rollback()
    assert outcome["result"] in ("57P01", "AdminShutdown", "OperationalError"), outcome
    assert conn.execute("select count(*) from pg_locks where pid = %s", (outcome["pid"],)).fetchone()[0] == 0
    assert snapshot(conn) == before
    new = conn.execute("select kill_switch, version from chat_set_v11_rollout_state('off', true, 'kill')").fetchone()
    assert new == (True, before[0]["version"] + 1)
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True


def test_terminating_a_session_after_its_call_but_before_commit_rolls_the_change_back(conn, db_url):
    before = snapshot(conn)
    with psycopg.connect(db_url, application_name="victim-in-tx") as victim:
        victim.execute("select * from chat_set_v11_rollout_state('off', true, 'kill, then never committed')")
        pid = victim.info.backend_pid
        assert conn.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
        with pytest.raises(psycopg.OperationalError):
            victim.commit()
    assert snapshot(conn) == before
    assert conn.execute("select kill_switch from chat_set_v11_rollout_state('off', true, 'kill')").fetchone()[0]
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True


def _p0_event() -> str:
    now = datetime.now(UTC)
    bucket = now.replace(second=now.second - now.second % 10, microsecond=0)
    return json.dumps([{"metric": "ack_without_receipt_10s_rate", "cohort": "canary",
                        "bucket_start": bucket.isoformat(), "numerator": 1, "denominator": 100}])


STATE_CHANGES = {
    "kill": ("select * from chat_set_v11_rollout_state('off', true, 'kill')", ()),
    "hold": ("select * from chat_set_v11_rollout_state('off', false, 'hold')", ()),
    "open_p0_incident": ("select * from chat_open_v11_incident('P0', 'ACK without receipt')", ()),
    "automatic_kill_on_ingest": ("select chat_put_v11_metric_samples(%s::jsonb)", "p0_event"),
}


@pytest.mark.parametrize("call", list(STATE_CHANGES))
def test_an_accepted_change_commits_synchronously_where_the_database_default_is_off(conn, fresh_db, call):
    name, url = fresh_db
    sql, params = STATE_CHANGES[call]
    params = (_p0_event(),) if params == "p0_event" else params
    conn.execute(f'alter database "{name}" set synchronous_commit = off')
    with psycopg.connect(url) as c:
        assert c.execute("show synchronous_commit").fetchone()[0] == "off"
        version = state(c)["version"]
        c.execute(sql, params)
        assert state(c)["version"] == version + 1  # the call changed the state ...
        assert c.execute("show synchronous_commit").fetchone()[0] == "on"  # ... and commits synchronously
        c.commit()
        assert c.execute("show synchronous_commit").fetchone()[0] == "off"  # only that transaction
        c.rollback()


def test_the_commit_record_of_an_acknowledged_change_is_flushed_before_the_call_returns(cluster, crash_db):
    """Database default synchronous_commit off, WAL writer asleep for 10 s: the call's commit record is on
    disk when it returns (flush LSN past it, and it survives an immediate shutdown right after)."""
    name, url = crash_db
    with cluster.connect(name) as owner:
        owner.execute(f'alter database "{name}" set synchronous_commit = off')
        owner.execute("create table public.async_control (note text)")
    with psycopg.connect(url) as c:
        assert c.execute("show synchronous_commit").fetchone()[0] == "off"
        before_commit = c.execute(
            "select version, pg_current_wal_insert_lsn() from chat_set_v11_rollout_state('off', true, 'durable kill')"
        ).fetchone()
        c.commit()
        flushed = c.execute("select pg_current_wal_flush_lsn() > %s::pg_lsn", (str(before_commit[1]),)).fetchone()[0]
        c.rollback()
        assert flushed, "the commit record was not flushed when the call returned"
        # control: a plain asynchronous commit right after, which nothing flushes
        c.execute("insert into public.async_control values ('async')")
        control_lsn = c.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
        c.commit()
        control_flushed = c.execute(
            "select pg_current_wal_flush_lsn() >= %s::pg_lsn", (str(control_lsn),)
        ).fetchone()[0]
        c.rollback()
    cluster.stop("immediate")
    cluster.start()
    with psycopg.connect(url, autocommit=True) as c:
        assert state(c)["version"] == before_commit[0]
        assert history(c, 1)[0]["reason"] == "durable kill"
        control_kept = c.execute("select count(*) from public.async_control").fetchone()[0]
    print(f"control: async commit flushed before shutdown={control_flushed}, survived={bool(control_kept)}")
