"""Issue 12 / SPEC 4.6: the kill switch never hangs and never fails anonymously. Whatever project table DDL or
maintenance holds (or queues for), the kill goes through or fails with RO010 within state_lock_timeout, naming the
blocking pid, role, application and lock, never the blocker's query text."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pytest_tests.support.calls import arrange_state, history, login, state

TIMEOUT_S = 0.3
SLACK_S = 0.35  # scheduling on a loaded 2-core runner; the figure itself lives in the note and docs/reliability.md

# every project table a kill could meet, and what the kill does when DDL holds it: the metric store and the policy
# are read under a short bound and replaced (the last verdict, the default timeout); the rest it must write or read
ALWAYS_THROUGH = {"policy", "metric", "metric_sample", "metric_sample_default", "config_change", "incident_entry"}
NAMED = {"rollout_state", "rollout_history", "stage", "incident"}


def timed_kill(conn, reason="incident P0"):
    started = time.monotonic()
    try:
        row = conn.execute(
            "select kill_switch, action from chat_set_v11_rollout_state('canary_5', true, %s)", (reason,)
        ).fetchone()
        return time.monotonic() - started, row, None
    except psycopg.Error as exc:
        return time.monotonic() - started, None, exc


@pytest.fixture
def operator(db_url):
    with login(db_url, "chat_test_operator", application_name="oncall") as c:
        c.execute("set statement_timeout = '20s'")
        yield c


def _arrange(conn):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', %s::jsonb)", (f'"{int(TIMEOUT_S * 1000)} ms"',))
    arrange_state(conn, "promote", "canary_5", False, False)


def test_k1_a_kill_goes_through_while_an_alter_of_the_policy_table_is_open(conn, db_url, operator):
    _arrange(conn)
    with psycopg.connect(db_url, application_name="owner-ddl") as ddl:
        ddl.execute("alter table chat_v11.policy add column x int")  # open transaction: ACCESS EXCLUSIVE held
        elapsed, row, err = timed_kill(operator)
        ddl.rollback()
    assert err is None, err
    assert row == (True, "kill")
    # the default bound (2 s) applied to the rest, and nothing waited for it
    assert elapsed < TIMEOUT_S + SLACK_S + 0.05
    assert state(conn)["kill_switch"] is True


def _hold(db_url, table, how, ready: threading.Event, release: threading.Event, pids: dict):
    """Hold ACCESS EXCLUSIVE on the table, or queue for it behind a long reader, until released."""
    if how == "held":
        with psycopg.connect(db_url, application_name=f"ddl-{table}") as c:
            pids["ddl"] = c.info.backend_pid
            c.execute(f"lock table chat_v11.{table} in access exclusive mode")
            ready.set()
            release.wait(30)
            c.rollback()
        return
    with psycopg.connect(db_url, application_name=f"reader-{table}") as reader:
        pids["reader"] = reader.info.backend_pid
        reader.execute(f"select 1 from chat_v11.{table} limit 1")
        with psycopg.connect(db_url, application_name=f"ddl-{table}") as ddl:
            pids["ddl"] = ddl.info.backend_pid
            ddl.execute("set lock_timeout = '30s'")

            def queued():
                try:
                    ddl.execute(f"lock table chat_v11.{table} in access exclusive mode")
                except psycopg.Error:
                    pass

            t = threading.Thread(target=queued)
            t.start()
            with psycopg.connect(db_url, autocommit=True) as probe:
                for _ in range(200):
                    if probe.execute(
                        "select count(*) from pg_locks where pid = %s and not granted", (pids["ddl"],)
                    ).fetchone()[0]:
                        break
                    time.sleep(0.01)
            ready.set()
            release.wait(30)
            reader.rollback()
            t.join(10)


@pytest.mark.parametrize("how", ["held", "queued"])
@pytest.mark.parametrize("table", sorted(ALWAYS_THROUGH | NAMED))
def test_k2_the_kill_under_ddl_on_each_project_table_goes_through_or_fails_fast_naming_the_blocker(
    conn, db_url, operator, table, how
):
    _arrange(conn)
    before = len(history(conn))
    ready, release, pids = threading.Event(), threading.Event(), {}
    holder = threading.Thread(target=_hold, args=(db_url, table, how, ready, release, pids))
    holder.start()
    try:
        assert ready.wait(10)
        elapsed, row, err = timed_kill(operator)
    finally:
        release.set()
        holder.join(30)
    assert elapsed < TIMEOUT_S + SLACK_S, f"{table} {how}: {elapsed:.3f} s"
    if table in ALWAYS_THROUGH:
        assert err is None, f"{table} {how}: {err}"
        assert row == (True, "kill")
        assert len(history(conn)) == before + 1
        return
    assert err is not None and err.diag.sqlstate == "RO010", f"{table} {how}: {err!r}"
    detail = err.diag.message_detail
    assert f"pid {pids['ddl']} (" in detail and "AccessExclusiveLock" in detail, detail
    assert f"application ddl-{table}" in detail, detail
    assert err.diag.message_hint
    assert len(history(conn)) == before and state(conn)["kill_switch"] is False


def test_k2_a_kill_while_maintenance_holds_the_metric_store_keeps_the_last_verdict_stamped(conn, db_url, operator):
    _arrange(conn)
    with psycopg.connect(db_url, application_name="maintenance") as m:
        m.execute("lock table chat_v11.metric_sample_default in access exclusive mode")
        elapsed, row, err = timed_kill(operator)
        m.rollback()
    assert err is None and row == (True, "kill")
    snapshot = history(conn, 1)[0]["gate_snapshot"]
    assert "the metric store was locked" in snapshot["fallback"]
    assert "evaluated_at" not in snapshot or snapshot["evaluated_at"] is not None


def test_l1_the_refusal_names_role_application_and_lock_but_never_the_blockers_query(conn, db_url, operator):
    _arrange(conn)
    with psycopg.connect(db_url, application_name="dba-console") as dba:
        dba.execute("lock table chat_v11.rollout_history in access exclusive mode")
        dba.execute("alter role chat_test_nobody password 'hunter2-very-secret'")
        _, _, err = timed_kill(operator)
        dba.rollback()
    assert err.diag.sqlstate == "RO010"
    detail = err.diag.message_detail
    assert "hunter2" not in detail and "password" not in detail.lower()
    assert "role postgres" in detail and "application dba-console" in detail
    assert "AccessExclusiveLock on chat_v11.rollout_history" in detail
    # the operator may not see a superuser's session state in pg_stat_activity: nor here
    assert "idle in transaction" not in detail


def test_a_kill_rolling_back_to_a_stage_whose_settings_change_is_open_fails_fast_naming_it(conn, db_url, operator):
    """The admin changes canary_1 in an open transaction (its stage row is locked); a kill that rolls back to
    canary_1 needs that row for the state's foreign key: RO010 within the budget, naming the admin."""
    _arrange(conn)
    with psycopg.connect(db_url, application_name="admin-console") as admin:
        admin_pid = admin.info.backend_pid
        admin.execute("select * from chat_set_v11_stage_settings('canary_1', 2, null)")
        started = time.monotonic()
        with pytest.raises(psycopg.Error) as info:
            operator.execute("select * from chat_set_v11_rollout_state('canary_1', true, 'kill and roll back')")
        elapsed = time.monotonic() - started
        admin.rollback()
    assert info.value.diag.sqlstate == "RO010"
    assert f"pid {admin_pid} (holds a row of chat_v11.stage" in info.value.diag.message_detail
    assert elapsed < TIMEOUT_S + SLACK_S
    # once the admin is done, the same kill goes through at once
    assert operator.execute(
        "select action, stage from chat_set_v11_rollout_state('canary_1', true, 'kill and roll back')"
    ).fetchone() == ("kill", "canary_1")
