"""Issue 12 (parts 3 and 4): partition maintenance is public.chat_run_v11_maintenance(), under a lock only the
project's functions can take, and the guardrails run no DDL at all. Another login cannot stop maintenance (the old
advisory lock means nothing now); a project session holding the maintenance lock makes a run say "skipped" and name
it; K3: an ingest session that runs the guardrails inside an open transaction holds no lock on the metric store
beyond reads, so a kill, gate reads and ingestion from other sessions go through at once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, login, refused, state
from pytest_tests.support.samples import healthy, put, sample

OLD_ADVISORY_LOCK = "select pg_advisory_lock(hashtext('chat_v11.metric_sample maintenance'))"



def day_ahead(days: int) -> str:
    day = datetime.now(UTC).date() + timedelta(days=days)
    return f"metric_sample_p{day:%Y%m%d}"


def exists(conn, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (f"chat_v11.{name}",)).fetchone()[0]


def metric_store_locks(conn, pid: int) -> set[tuple[str, str]]:
    """(relation, mode) of every lock backend pid holds on chat_v11.metric_sample and its partitions."""
    rows = conn.execute(
        "select c.relname, l.mode from pg_locks l join pg_class c on c.oid = l.relation "
        "where l.pid = %s and l.locktype = 'relation' and c.relname like 'metric_sample%%'",
        (pid,),
    ).fetchall()
    return set(rows)


def test_the_maintenance_function_is_an_ingest_api_function(conn):
    row = conn.execute(
        "select p.prosecdef, p.proconfig, obj_description(p.oid, 'pg_proc'), "
        "has_function_privilege('public', p.oid, 'execute') from pg_proc p "
        "where p.oid = 'public.chat_run_v11_maintenance()'::regprocedure"
    ).fetchone()
    assert row[0] is True and row[1] == ["search_path=pg_catalog, chat_v11, pg_temp"]
    assert row[2] and "autocommit" in row[2]
    assert row[3] is False
    allowed = {
        role: conn.execute(
            "select has_function_privilege(%s, 'public.chat_run_v11_maintenance()', 'execute')", (role,)
        ).fetchone()[0]
        for role in ("chat_rollout_reader", "chat_rollout_operator", "chat_rollout_ingest", "chat_rollout_admin",
                     "chat_test_nobody")
    }
    assert allowed == {"chat_rollout_reader": False, "chat_rollout_operator": False, "chat_rollout_ingest": True,
                       "chat_rollout_admin": False, "chat_test_nobody": False}


def test_another_login_holding_the_old_advisory_lock_cannot_stop_maintenance(conn, db_url):
    name = day_ahead(2)
    conn.execute(f"drop table chat_v11.{name}")
    with login(db_url, "chat_test_nobody") as nobody, login(db_url, "chat_test_ingest") as ingest:
        nobody.execute(OLD_ADVISORY_LOCK)
        # nor can it take the new lock: the table grants nothing
        assert refused(nobody, "select * from chat_v11.maintenance for update").sqlstate == "42501"
        actions = ingest.execute("select action, detail from chat_run_v11_maintenance()").fetchall()
    assert [a for a, _ in actions] == ["partition"]
    assert exists(conn, name)


def test_a_project_session_holding_the_maintenance_lock_makes_a_run_say_skipped(conn, db_url):
    name = day_ahead(1)
    conn.execute(f"drop table chat_v11.{name}")
    with login(db_url, "chat_test_ingest") as first, login(db_url, "chat_test_ingest") as second:
        first.execute("begin")
        assert first.execute("select action from chat_run_v11_maintenance()").fetchall() == [("partition",)]
        started = time.monotonic()
        actions = second.execute("select action, detail from chat_run_v11_maintenance()").fetchall()
        assert time.monotonic() - started < 1  # never waits for the lock
        assert [a for a, _ in actions] == ["skipped"]
        assert f"pid {first.info.backend_pid}" in actions[0][1]
        assert "maintenance lock" in actions[0][1]
        first.execute("commit")
        assert second.execute("select action from chat_run_v11_maintenance()").fetchall() == []
    assert exists(conn, name)


def test_maintenance_in_an_open_transaction_keeps_its_locks_until_commit(conn, db_url):
    """Documented: the DDL's locks last until the caller's commit, so it must run in its own transaction."""
    name = day_ahead(2)
    conn.execute(f"drop table chat_v11.{name}")
    with login(db_url, "chat_test_ingest") as ingest:
        ingest.execute("begin")
        ingest.execute("select * from chat_run_v11_maintenance()").fetchall()
        assert ("metric_sample_default", "AccessExclusiveLock") in metric_store_locks(conn, ingest.info.backend_pid)
        ingest.execute("commit")
        assert metric_store_locks(conn, ingest.info.backend_pid) == set()


@pytest.mark.parametrize("due", ["create", "drop"])
def test_k3_guardrails_in_an_open_transaction_hold_no_ddl_lock_and_a_kill_goes_through(conn, db_url, due):
    """K3 repro: session A runs `begin; select * from chat_run_v11_guardrails();` with partition work due (a day
    ahead missing, or an expired day), and stays open. A holds at most AccessShare on the metric store (its gate
    reads); a kill, a gate read and an ingestion from other sessions complete at once."""
    if due == "create":
        conn.execute(f"drop table chat_v11.{day_ahead(2)}")
    else:
        old = (datetime.now(UTC) - timedelta(days=12)).date()
        conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (old, old))
        conn.execute("select chat_set_v11_policy('retention', '\"5 days\"')")
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, 20)  # fresh P0 data: the run reads the metric store and freezes nothing
    with login(db_url, "chat_test_ingest") as a, login(db_url, "chat_test_operator") as oncall, \
            login(db_url, "chat_test_ingest") as writer:
        for c in (oncall, writer):
            c.execute("set statement_timeout = '5s'")
        a.execute("begin")
        actions = [r[0] for r in a.execute("select action from chat_run_v11_guardrails()").fetchall()]
        assert actions == (["maintenance"] if due == "create" else [])
        held = metric_store_locks(conn, a.info.backend_pid)
        assert held and {mode for _, mode in held} == {"AccessShareLock"}, held

        started = time.monotonic()
        oncall.execute("select * from chat_get_v11_release_gates()").fetchone()
        at = scenarios.anchor_now()
        assert put(writer, [sample("full_state_rate", "control", at, 1, 1000)]) == 1
        killed = oncall.execute(
            "select kill_switch from chat_set_v11_rollout_state('canary_1', true, 'kill while A is open')"
        ).fetchone()
        assert killed == (True,)
        assert time.monotonic() - started < 2
        assert a.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # A never ended meanwhile
        a.execute("commit")
    assert state(conn)["kill_switch"] is True
