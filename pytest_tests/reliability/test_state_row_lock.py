"""Revision 0014: a state call locks the state row with its top transaction, the one that then updates it.

Before, the row was always locked inside a subtransaction (the exception block that turns a lock timeout into RO010)
and updated by the top transaction: the old row version's xmax became a MultiXactId at every state change, and under
contention the one-row table grew page after page (docs/performance.md). Now state calls queue on an advisory lock
(the wait, in a subtransaction, still ends in RO010 naming the holder) and take the row with SKIP LOCKED at the
caller's level. A row held outside the queue is still waited for within the budget and named."""

from __future__ import annotations

import threading

import psycopg

from pytest_tests.support.calls import arrange_state, login, refused, state

MXID_AGE = (
    "select pg_catalog.mxid_age(d.datminmxid) from pg_catalog.pg_database as d where d.datname = current_database()"
)


def test_a_free_row_is_locked_by_the_top_transaction(conn):
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        locker, top = conn.execute(
            "select s.xmax::text, pg_catalog.pg_current_xact_id()::text from chat_v11.rollout_state as s"
        ).fetchone()
    assert locker == top


def test_kills_holds_and_rollbacks_create_no_multixact(conn, db_url):
    arrange_state(conn, "promote", "canary_5", False, False)
    with login(db_url, "chat_test_operator") as operator:
        before = conn.execute(MXID_AGE).fetchone()[0]
        actions = []
        for stage, kill, reason in [
            ("canary_5", False, "hold while we look"),
            ("canary_1", False, "roll back one stage"),
            ("canary_1", True, "incident P0"),
            ("off", True, "kill again, lower"),
        ]:
            actions.append(
                operator.execute(
                    "select action from chat_set_v11_rollout_state(%s, %s, %s)", (stage, kill, reason)
                ).fetchone()[0]
            )
        after = conn.execute(MXID_AGE).fetchone()[0]
    assert actions == ["hold", "rollback", "kill", "kill"]
    assert state(conn)["stage"] == "off" and state(conn)["kill_switch"] is True
    assert after == before  # no MultiXactId was created by the four state changes


def test_a_busy_row_is_still_waited_for_within_the_budget_and_named(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"200 ms\"'::jsonb)")
    arrange_state(conn, "promote", "canary_5", False, False)
    with psycopg.connect(db_url, application_name="row-holder") as holder:
        holder.execute("select 1 from chat_v11.rollout_state for update")  # open transaction: the row is held
        with login(db_url, "chat_test_operator") as operator:
            err = refused(operator, "select * from chat_set_v11_rollout_state('canary_5', true, 'incident P0')")
        holder.rollback()
    assert err.diag.sqlstate == "RO010"
    assert "row-holder" in (err.diag.message_detail or "")
    # once the holder is gone, the same kill goes through
    with login(db_url, "chat_test_operator") as operator:
        assert operator.execute(
            "select action from chat_set_v11_rollout_state('canary_5', true, 'incident P0')"
        ).fetchone() == ("kill",)


def test_eight_contending_sessions_create_no_multixact_and_keep_the_table_one_page(conn, db_url):
    arrange_state(conn, "promote", "canary_5", False, False)
    conn.execute("vacuum chat_v11.rollout_state")
    before = conn.execute(MXID_AGE).fetchone()[0]
    version = state(conn)["version"]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def holds() -> None:
        try:
            with login(db_url, "chat_test_operator") as operator:
                start.wait()
                for _ in range(25):
                    operator.execute("select * from chat_set_v11_rollout_state('canary_5', false, 'hold')")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=holds) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert state(conn)["version"] == version + 200
    assert conn.execute(MXID_AGE).fetchone()[0] == before
    # the old row versions were pruned as the changes went: the table did not grow with them
    assert conn.execute("select pg_relation_size('chat_v11.rollout_state')").fetchone()[0] <= 2 * 8192


def test_a_state_call_waiting_in_the_queue_names_the_holder(conn, db_url):
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"200 ms\"'::jsonb)")
    arrange_state(conn, "promote", "canary_5", False, False)
    with psycopg.connect(db_url, application_name="queue-holder") as holder:
        holder.execute("select chat_v11.lock_state()")  # open transaction: the queue and the row are held
        queue = holder.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and classid = 1667785076 and objid = 11 "
            "and objsubid = 2 and pid = pg_backend_pid() and granted"
        ).fetchone()[0]
        with login(db_url, "chat_test_operator") as operator:
            err = refused(operator, "select * from chat_set_v11_rollout_state('canary_5', true, 'incident P0')")
        holder.rollback()
    assert queue == 1
    assert err.diag.sqlstate == "RO010"
    assert "queue-holder" in (err.diag.message_detail or "")
    assert "the state row" in (err.diag.message_detail or "")
