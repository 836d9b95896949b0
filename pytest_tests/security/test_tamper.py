"""Issue 13: tampering with the history as the superuser, and what chat_verify_v11_history() names for it.

Each case builds 20 history rows with real calls, tampers as `postgres` in a fresh clone (triggers disabled,
session_replication_role = replica, DROP NOT NULL, owner INSERT/UPDATE) and expects the first finding: its kind and
exact version. docs/design.md "Trust: what the verifier and the anchors catch" is the table in words.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from pytest_tests.support.calls import refused, set_state

FINDINGS = "select ok, first_broken_version, kind, problem from chat_verify_v11_history()"
RECOMPUTE = (
    "chat_v11.history_row_hash((h.version, h.changed_at, h.changed_by, h.actor, h.action, h.from_stage, h.to_stage, "
    "h.from_kill_switch, h.to_kill_switch, h.promotion_frozen, {reason}, h.note, h.gate_snapshot, h.incident_id, "
    "{prev_hash}, h.hash)::chat_v11.rollout_history)"
)


def build_history(conn: psycopg.Connection) -> None:
    """20 rows: init, 18 holds, then a kill (the head has the kill switch on)."""
    for i in range(18):
        set_state(conn, "off", False, f"hold {i}")
    set_state(conn, "off", True, "kill switch")
    assert conn.execute("select max(version) from chat_v11.rollout_history").fetchone()[0] == 20


def findings(conn: psycopg.Connection, sql: str = FINDINGS) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def replica(*statements: str) -> list[list[str]]:
    return [["set local session_replication_role = replica", *statements]]


RECOMPUTE_TAIL = """
do $$
declare v bigint; prev text;
begin
    for v in 7..20 loop
        select hash into prev from chat_v11.rollout_history where version = v - 1;
        update chat_v11.rollout_history as h
           set reason = case when v = 7 then 'nothing happened' else h.reason end,
               prev_hash = prev,
               hash = chat_v11.history_row_hash((h.version, h.changed_at, h.changed_by, h.actor, h.action,
                   h.from_stage, h.to_stage, h.from_kill_switch, h.to_kill_switch, h.promotion_frozen,
                   case when v = 7 then 'nothing happened' else h.reason end, h.note, h.gate_snapshot,
                   h.incident_id, prev, h.hash)::chat_v11.rollout_history)
         where h.version = v;
    end loop;
end
$$"""

DELETE_AND_REINSERT = [[
    "create temp table saved on commit drop as select * from chat_v11.rollout_history where version >= 7",
    "set local session_replication_role = replica",
    "delete from chat_v11.rollout_history where version >= 7",
    "set local session_replication_role = origin",
    # through the project's own chain trigger: prev_hash and hash are computed afresh
    "insert into chat_v11.rollout_history (version, changed_at, changed_by, actor, action, from_stage, to_stage, "
    "from_kill_switch, to_kill_switch, promotion_frozen, reason, note, gate_snapshot, incident_id) "
    "select version, changed_at, changed_by, actor, action, from_stage, to_stage, from_kill_switch, to_kill_switch, "
    "promotion_frozen, case when version = 7 then 'nothing happened' else reason end, note, gate_snapshot, "
    "incident_id from saved order by version",
]]

# (id, transactions (each a list of statements), the first finding (version, kind), other findings expected)
CASES = [
    ("disable-trigger-update", [[
        "alter table chat_v11.rollout_history disable trigger rollout_history_no_update_delete",
        "update chat_v11.rollout_history set reason = 'nothing happened' where version = 7",
        "alter table chat_v11.rollout_history enable trigger rollout_history_no_update_delete",
    ]], (7, "hash_mismatch"), set()),
    ("replica-update", replica("update chat_v11.rollout_history set to_stage = 'full' where version = 7"),
     (7, "hash_mismatch"), set()),
    ("replica-delete-last", replica("delete from chat_v11.rollout_history where version = 20"),
     (20, "state_mismatch"), set()),
    ("timestamp-plus-1us", replica(
        "update chat_v11.rollout_history set changed_at = changed_at + interval '1 microsecond' where version = 7"
    ), (7, "hash_mismatch"), set()),
    ("swapped-reasons", replica(
        "update chat_v11.rollout_history as h set reason = o.reason from chat_v11.rollout_history as o "
        "where (h.version, o.version) in ((7, 8), (8, 7))"
    ), (7, "hash_mismatch"), {(8, "hash_mismatch")}),
    ("delete-middle-row", replica("delete from chat_v11.rollout_history where version = 7"), (7, "gap"), set()),
    ("update-and-recompute-own-hash", replica(
        "update chat_v11.rollout_history as h set reason = 'nothing happened', hash = "
        + RECOMPUTE.format(reason="'nothing happened'", prev_hash="h.prev_hash") + " where version = 7"
    ), (7, "broken_link"), set()),
    ("replica-truncate", replica("truncate chat_v11.rollout_history"), (1, "empty_history"), set()),
    ("update-v7-recompute-7-to-20", replica(RECOMPUTE_TAIL), (7, "written_after_state"), {(20, "state_xmin")}),
    ("delete-7-to-20-and-reinsert", DELETE_AND_REINSERT, (7, "written_after_state"), {(20, "state_xmin")}),
    ("drop-not-null-null-hash", [
        ["alter table chat_v11.rollout_history alter column hash drop not null"],
        ["set local session_replication_role = replica",
         "update chat_v11.rollout_history set hash = null where version = 7"],
    ], (7, "null"), set()),
    ("drop-not-null-null-prev-hash", [
        ["alter table chat_v11.rollout_history alter column prev_hash drop not null"],
        ["set local session_replication_role = replica",
         "update chat_v11.rollout_history set prev_hash = null where version = 9"],
    ], (9, "null"), set()),
    ("owner-forged-resume-then-state", [
        ["insert into chat_v11.rollout_history (version, changed_at, changed_by, actor, action, from_stage, to_stage, "
         "from_kill_switch, to_kill_switch, promotion_frozen, reason) values (21, clock_timestamp(), "
         "'chat_test_operator', null, 'resume', 'off', 'off', true, false, true, 'all clear')"],
        ["update chat_v11.rollout_state as s set stage = h.to_stage, kill_switch = h.to_kill_switch, "
         "promotion_frozen = h.promotion_frozen, reason = h.reason, changed_by = h.changed_by, actor = h.actor, "
         "changed_at = h.changed_at, version = h.version from chat_v11.rollout_history as h where h.version = 21"],
    ], (21, "state_xmin"), set()),
    ("state-row-alone", [["update chat_v11.rollout_state set kill_switch = false, stage = 'full'"]],
     (20, "state_mismatch"), {(20, "state_xmin")}),
    ("delete-last-and-set-state-version-back", [
        ["set local session_replication_role = replica", "delete from chat_v11.rollout_history where version = 20",
         "update chat_v11.rollout_state set version = 19"],
    ], (19, "state_mismatch"), {(19, "state_xmin")}),
    ("delete-last-and-set-whole-state-back", [
        ["set local session_replication_role = replica", "delete from chat_v11.rollout_history where version = 20",
         "update chat_v11.rollout_state as s set stage = h.to_stage, kill_switch = h.to_kill_switch, "
         "promotion_frozen = h.promotion_frozen, reason = h.reason, changed_by = h.changed_by, actor = h.actor, "
         "changed_at = h.changed_at, version = h.version from chat_v11.rollout_history as h where h.version = 19"],
    ], (19, "state_xmin"), set()),
    ("delete-state-row", [["delete from chat_v11.rollout_state"]], (None, "missing_state"), set()),
]


def tamper(conn: psycopg.Connection, transactions: list[list[str]]) -> None:
    for statements in transactions:
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)


def test_an_untouched_history_verifies(conn):
    build_history(conn)
    rows = conn.execute(
        "select ok, rows_checked, first_broken_version, kind, checked_from, head_version from chat_verify_v11_history()"
    ).fetchall()
    assert rows == [(True, 20, None, None, 1, 20)]


def test_calls_whose_xids_come_in_another_order_than_their_versions_still_verify(conn, db_url):
    """Found by the durability run: a call may take its transaction id before another call that then gets the state
    lock first, so xids and versions need not grow together. Only the head is compared with the state row."""
    build_history(conn)
    with psycopg.connect(db_url) as early:
        early.execute("select pg_current_xact_id()")  # the older xid, taken first
        set_state(conn, "off", True, "kill switch (the newer xid, committed first)")
        early.execute("select * from chat_set_v11_rollout_state('off', true, 'kill switch (the older xid)')")
        early.commit()
    rows = conn.execute("select ok, kind, head_version from chat_verify_v11_history_full()").fetchall()
    assert rows == [(True, None, 22)]


@pytest.mark.parametrize(("transactions", "first", "also"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_tamper_is_named_with_its_kind_and_exact_version(conn, transactions, first, also):
    build_history(conn)
    tamper(conn, transactions)
    rows = findings(conn)
    assert all(ok is False for ok, *_ in rows), rows
    assert (rows[0][1], rows[0][2]) == first, rows
    assert also <= {(version, kind) for _, version, kind, _ in rows}, rows
    assert all(problem for *_, problem in rows)
    # the full walk (an operator's) names the same first finding
    full = findings(conn, FINDINGS.replace("chat_verify_v11_history()", "chat_verify_v11_history_full()"))
    assert (full[0][1], full[0][2]) == first, full


@pytest.mark.parametrize(
    "transactions", [replica(RECOMPUTE_TAIL), DELETE_AND_REINSERT], ids=["recompute-7-to-20", "delete-and-reinsert"]
)
def test_the_anchor_catches_a_whole_chain_rewrite(conn, transactions):
    build_history(conn)
    anchor = conn.execute("select version, hash from chat_v11.rollout_history where version = 20").fetchone()
    early = conn.execute("select version, hash from chat_v11.rollout_history where version = 6").fetchone()
    tamper(conn, transactions)
    rows = findings(conn, FINDINGS.replace("()", "(%s, %s)") % tuple(map(repr, anchor)))
    assert (20, "anchor_mismatch") in {(v, k) for _, v, k, _ in rows}, rows
    # an anchor before the rewrite still holds: the rows up to version 6 are what they were
    rows = findings(conn, FINDINGS.replace("()", "(%s, %s)") % tuple(map(repr, early)))
    assert "anchor_mismatch" not in {k for _, _, k, _ in rows}, rows


def test_an_anchor_from_a_notification_verifies_and_a_malformed_one_is_refused(conn):
    build_history(conn)
    conn.execute("listen chat_v11_rollout")
    set_state(conn, "off", True, "kill again")
    payload = next(conn.notifies(stop_after=1)).payload
    anchor = json.loads(payload)
    assert anchor["version"] == 21
    rows = conn.execute(
        "select ok, kind, head_version, head_hash from chat_verify_v11_history(%s, %s)",
        (anchor["version"], anchor["hash"]),
    ).fetchall()
    assert rows == [(True, None, 21, anchor["hash"])]
    assert refused(conn, "select * from chat_verify_v11_history(21, 'not a hash')").diag.sqlstate == "RO011"
    assert refused(conn, "select * from chat_verify_v11_history(21, null)").diag.sqlstate == "RO011"


def test_a_checkpoint_keeps_the_walk_flat_and_the_full_walk_still_sees_old_rows(conn):
    build_history(conn)
    checkpoint = conn.execute("select version, walked_from from chat_checkpoint_v11_history()").fetchone()
    assert checkpoint == (20, 1)
    set_state(conn, "off", True, "kill again")
    assert conn.execute("select ok, rows_checked, checked_from from chat_verify_v11_history()").fetchone() == (
        True, 2, 20,
    )
    # an edit before the checkpoint without recomputing: only the full walk (or the next full checkpoint) sees it
    tamper(conn, replica("update chat_v11.rollout_history set reason = 'nothing happened' where version = 7"))
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True
    assert findings(conn, FINDINGS.replace("()", "_full()"))[0][1:3] == (7, "hash_mismatch")
    err = refused(conn, "select * from chat_checkpoint_v11_history(true)")
    assert err.diag.sqlstate == "RO039" and "version 7" in err.diag.message_detail
    # a rewrite that recomputes the hashes changes the checkpointed row: the incremental walk sees that
    tamper(conn, replica(RECOMPUTE_TAIL))
    kinds = {(v, k) for _, v, k, _ in findings(conn)}
    assert (20, "checkpoint_mismatch") in kinds, kinds


def test_a_state_row_rewritten_alone_is_acknowledged_only_on_request(conn):
    build_history(conn)
    conn.execute("update chat_v11.rollout_state set version = version")  # a restore or a migration rewrote it
    assert findings(conn)[0][1:3] == (20, "state_xmin")
    assert refused(conn, "select * from chat_checkpoint_v11_history()").diag.sqlstate == "RO039"
    conn.execute("select * from chat_checkpoint_v11_history(p_accept_state => true)")
    assert findings(conn)[0][0] is True
    set_state(conn, "off", True, "kill again")  # the next state change writes both rows together again
    assert findings(conn)[0][0] is True


def test_checkpoints_are_append_only(conn):
    build_history(conn)
    conn.execute("select * from chat_checkpoint_v11_history()")
    for statement in ("update chat_v11.history_checkpoint set version = 1", "delete from chat_v11.history_checkpoint",
                      "truncate chat_v11.history_checkpoint"):
        assert refused(conn, statement).diag.sqlstate == "RO012"
