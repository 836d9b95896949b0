"""SPEC 4.3: the history is append-only for every role and its hash chain reports the first broken version."""

from __future__ import annotations

import psycopg
import pytest

from pytest_tests.support.calls import history, refused, set_state

VERIFY = "select ok, rows_checked, first_broken_version, problem from chat_verify_v11_history()"


def make_history(conn, n: int = 4) -> None:
    for i in range(n):
        set_state(conn, "off", False, f"hold {i}")


@pytest.mark.parametrize(
    "statement",
    [
        "update chat_v11.rollout_history set reason = 'rewritten' where version = 2",
        "delete from chat_v11.rollout_history where version = 2",
        "truncate chat_v11.rollout_history",
        "update chat_v11.config_change set target_key = 'x'",
        "delete from chat_v11.config_change",
        "truncate chat_v11.config_change",
    ],
)
def test_history_refuses_update_delete_truncate_even_for_the_owner(conn, statement):
    make_history(conn)
    conn.execute("select chat_set_v11_policy('state_lock_timeout', '\"3 seconds\"')")
    before = history(conn)
    err = refused(conn, statement)
    assert err.diag.sqlstate == "RO012"
    assert err.diag.message_hint
    assert history(conn) == before


def test_history_rows_form_a_valid_chain(conn):
    make_history(conn, 5)
    rows = sorted(history(conn), key=lambda r: r["version"])
    assert rows[0]["prev_hash"] == "0" * 64
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["prev_hash"] == prev["hash"]
    assert conn.execute(VERIFY).fetchone() == (True, 6, None, None)


def tamper(conn, sql: str) -> None:
    """A superuser with triggers disabled rewrites history."""
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(sql)


def test_a_tampered_row_is_reported_at_its_exact_version(conn):
    make_history(conn, 5)
    tamper(conn, "update chat_v11.rollout_history set reason = 'nothing happened' where version = 3")
    ok, checked, broken, problem = conn.execute(VERIFY).fetchone()
    assert (ok, checked, broken) == (False, 6, 3)
    assert "changed after it was written" in problem


def test_a_recomputed_hash_is_reported_at_the_rewritten_version(conn):
    make_history(conn, 5)
    tamper(
        conn,
        "update chat_v11.rollout_history h set reason = 'forged', "
        "hash = chat_v11.history_row_hash((h.version, h.changed_at, h.changed_by, h.actor, h.action, h.from_stage, "
        "h.to_stage, h.from_kill_switch, h.to_kill_switch, h.promotion_frozen, 'forged', h.note, h.gate_snapshot, "
        "h.incident_id, h.prev_hash, h.hash)::chat_v11.rollout_history) where version = 4",
    )
    ok, _, broken, problem = conn.execute(VERIFY).fetchone()
    assert (ok, broken) == (False, 4)
    assert "the hash of version 4 is not the prev_hash version 5 recorded" in problem


def test_a_deleted_row_is_reported_as_a_gap(conn):
    make_history(conn, 5)
    tamper(conn, "delete from chat_v11.rollout_history where version = 4")
    ok, _, broken, problem = conn.execute(VERIFY).fetchone()
    assert (ok, broken) == (False, 4)
    assert "missing" in problem


def test_a_removed_tail_is_reported_against_the_state_version(conn):
    make_history(conn, 3)
    tamper(conn, "delete from chat_v11.rollout_history where version = 4")
    ok, _, broken, problem = conn.execute(VERIFY).fetchone()
    assert (ok, broken) == (False, 4)
    assert "state is at version 4" in problem


def test_a_direct_insert_out_of_sequence_is_refused(conn):
    err = refused(
        conn,
        "insert into chat_v11.rollout_history (version, changed_at, changed_by, action, to_stage, to_kill_switch, "
        "promotion_frozen, reason) values (7, now(), 'x', 'hold', 'off', false, true, 'forged')",
    )
    assert err.diag.sqlstate == "RO012"


def test_history_function_returns_the_newest_first_and_validates_its_limit(conn):
    make_history(conn, 4)
    assert [r["version"] for r in history(conn, 2)] == [5, 4]
    for bad in (0, -1, None):
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select * from chat_get_v11_rollout_history(%s)", (bad,))
        assert info.value.diag.sqlstate == "RO011"
    assert len(conn.execute("select * from chat_get_v11_rollout_history()").fetchall()) == 5
