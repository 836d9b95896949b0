"""SPEC 9, four eyes: chat_approve_v11_promotion and chat_get_v11_approvals. Each validity rule (next stage only,
voided by a stage or kill switch change, approval_ttl, never counted for the promoter, one per person), the
blockers text, the RO041 refusal of a manual promotion, the audit guarantees, and who may approve."""

from __future__ import annotations

import psycopg
import pytest

from pytest_tests.support.calls import arrange_state, gates, login, refused, set_state, snapshot
from pytest_tests.support.databases import fingerprint
from pytest_tests.support.samples import healthy

APPROVERS = ("chat_test_approver_a", "chat_test_approver_b")


@pytest.fixture
def approvers(conn, db_url):
    """Two more operator logins (cluster-wide roles, created once), as autocommit connections to the test database."""
    for name in APPROVERS:
        conn.execute(
            f"do $$ begin create role {name} login; exception when duplicate_object then null; end $$"
        )
        conn.execute(f"grant chat_rollout_operator to {name}")
    connections = [login(db_url, name) for name in APPROVERS]
    yield connections
    for c in connections:
        c.close()


def approve(c, stage: str, reason: str = "looks good") -> dict:
    cur = c.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from chat_approve_v11_promotion(%s, %s)", (stage, reason)).fetchone()


def valid(c) -> list[tuple]:
    return c.execute("select stage, approved_by from chat_get_v11_approvals() order by approved_by").fetchall()


def green_at_canary_1(conn) -> None:
    """Healthy gates, the rollout at canary_1 with no observation window left: only approvals can block."""
    healthy(conn, 40)
    conn.execute("select chat_set_v11_stage_settings('canary_1', null, '0')")
    arrange_state(conn, "promote", "canary_1", False, False)


def test_an_approval_records_who_the_claimed_actor_when_why_and_the_version_seen(conn, approvers):
    a, _ = approvers
    a.execute("set chat.actor = 'alice@example.com'")
    row = approve(a, "canary_1", "  canary looks healthy  ")
    assert (row["approval_id"], row["stage"], row["from_stage"], row["approved_by"], row["actor"]) == (
        1, "canary_1", "off", "chat_test_approver_a", "alice@example.com"
    )
    assert (row["reason"], row["state_version"], row["recorded"]) == ("canary looks healthy", 1, True)
    assert row["expires_at"] - row["approved_at"] == __import__("datetime").timedelta(hours=24)
    stored = conn.execute(
        "select a.history_hash = h.hash, a.prev_hash = repeat('0', 64), a.hash = chat_v11.approval_row_hash(a) "
        "from chat_v11.promotion_approval as a join chat_v11.rollout_history as h on h.version = a.state_version"
    ).fetchone()
    assert stored == (True, True, True)


def test_only_the_next_stage_can_be_approved(conn, approvers):
    a, _ = approvers
    before = fingerprint(conn)
    for stage in ("canary_5", "off", "nowhere"):
        err = refused(a, "select * from chat_approve_v11_promotion(%s, 'skip')", (stage,))
        assert err.diag.sqlstate == "RO042"
        assert "it is not the next stage" in err.diag.message_primary
        assert "the next stage is canary_1" in err.diag.message_detail
        assert "chat_approve_v11_promotion('canary_1', reason)" in err.diag.message_hint
    assert fingerprint(conn) == before


def test_the_last_stage_has_nothing_to_approve(conn, approvers):
    a, _ = approvers
    arrange_state(conn, "promote", "full", False, False)
    err = refused(a, "select * from chat_approve_v11_promotion('full', 'more')")
    assert err.diag.sqlstate == "RO042"
    assert "the last stage" in err.diag.message_detail


def test_no_approval_while_the_kill_switch_is_on(conn, approvers):
    a, _ = approvers
    arrange_state(conn, "kill", "canary_1", True, True)
    before = fingerprint(conn)
    err = refused(a, "select * from chat_approve_v11_promotion('canary_5', 'after the kill')")
    assert err.diag.sqlstate == "RO043"
    assert err.diag.message_detail and "Resume" in err.diag.message_hint
    assert fingerprint(conn) == before


def test_one_approval_per_person_and_stage_change_a_repeat_records_nothing(conn, approvers):
    a, _ = approvers
    notices = []
    a.add_notice_handler(lambda d: notices.append(d.message_primary))
    first = approve(a, "canary_1", "first")
    again = approve(a, "canary_1", "second")
    assert (again["approval_id"], again["reason"], again["recorded"]) == (first["approval_id"], "first", False)
    assert any("already approved the promotion to canary_1" in n for n in notices), notices
    assert conn.execute("select count(*) from chat_v11.promotion_approval").fetchone()[0] == 1
    assert valid(conn) == [("canary_1", "chat_test_approver_a")]


def test_a_stage_change_voids_approvals_and_they_do_not_come_back(conn, approvers):
    a, b = approvers
    arrange_state(conn, "promote", "canary_1", False, False)
    approve(a, "canary_5")
    approve(b, "canary_5")
    assert valid(conn) == [("canary_5", "chat_test_approver_a"), ("canary_5", "chat_test_approver_b")]
    set_state(conn, "off", False, "rollback")
    assert valid(conn) == []
    arrange_state(conn, "promote", "canary_1", False, False)  # back at canary_1: the old approvals stay void
    assert valid(conn) == []
    # a new approval after the change counts again
    assert approve(a, "canary_5")["recorded"] is True
    assert valid(conn) == [("canary_5", "chat_test_approver_a")]


def test_a_kill_switch_change_voids_approvals_even_at_the_same_stage(conn, approvers):
    a, _ = approvers
    arrange_state(conn, "promote", "canary_1", False, False)
    approve(a, "canary_5")
    set_state(conn, "canary_1", True, "kill")
    assert valid(conn) == []
    arrange_state(conn, "resume", "canary_1", False, False)
    assert valid(conn) == []


def test_a_hold_does_not_void_an_approval(conn, approvers):
    a, _ = approvers
    arrange_state(conn, "promote", "canary_1", False, False)
    approve(a, "canary_5")
    set_state(conn, "canary_1", False, "hold")
    assert valid(conn) == [("canary_5", "chat_test_approver_a")]


def _backdated_approval(conn, who: str, stage: str, age: str) -> None:
    """An approval recorded `age` ago (written as the owner through the chain trigger: the API stamps the time)."""
    conn.execute(
        "insert into chat_v11.promotion_approval (approval_id, approved_at, approved_by, stage, from_stage, "
        "state_version, history_hash, reason, prev_hash, hash) "
        "select coalesce((select max(approval_id) from chat_v11.promotion_approval), 0) + 1, "
        "       clock_timestamp() - %s::interval, %s, %s, s.stage, s.version, "
        "       (select h.hash from chat_v11.rollout_history as h where h.version = s.version), 'old', '', '' "
        "  from chat_v11.rollout_state as s",
        (age, who, stage),
    )


def test_an_approval_older_than_approval_ttl_does_not_count(conn, approvers):
    _backdated_approval(conn, "chat_test_approver_a", "canary_1", "25 hours")
    _backdated_approval(conn, "chat_test_approver_b", "canary_1", "23 hours")
    assert valid(conn) == [("canary_1", "chat_test_approver_b")]
    conn.execute("select chat_set_v11_policy('approval_ttl', '\"2 days\"')")
    assert valid(conn) == [("canary_1", "chat_test_approver_a"), ("canary_1", "chat_test_approver_b")]
    conn.execute("select chat_set_v11_policy('approval_ttl', '\"1 hour\"')")
    assert valid(conn) == []
    # an expired approval may be renewed: the repeat records a new one
    a, _ = approvers
    assert approve(a, "canary_1")["recorded"] is True
    assert valid(conn) == [("canary_1", "chat_test_approver_a")]


def test_missing_approvals_are_blockers_and_the_go_no_go_says_no(conn, approvers):
    a, b = approvers
    green_at_canary_1(conn)
    assert gates(conn)["promotion_allowed"] is True
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"approvals_required\": 2}')")
    g = gates(conn)
    assert g["promotion_allowed"] is False
    assert g["blockers"] == [
        "approvals missing: promotion to canary_5 needs 2 approval(s) from someone other than postgres, 0 valid"
    ]
    approve(a, "canary_5")
    assert gates(conn)["blockers"] == [
        "approvals missing: promotion to canary_5 needs 2 approval(s) from someone other than postgres, 1 valid "
        "(chat_test_approver_a)"
    ]
    # the approver's own view: its approval never counts for its own promotion
    assert gates(a)["blockers"] == [
        "approvals missing: promotion to canary_5 needs 2 approval(s) from someone other than chat_test_approver_a, "
        "0 valid; the approval of chat_test_approver_a does not count for a promotion by chat_test_approver_a"
    ]
    approve(b, "canary_5")
    g = gates(conn)
    assert (g["promotion_allowed"], g["blockers"]) == (True, [])
    progression = conn.execute(
        "select approvals_required, approvals_valid, approvals_missing from chat_get_v11_progression()"
    ).fetchone()
    assert progression == (2, 2, 0)


def test_a_manual_promotion_without_the_approvals_is_refused_with_ro041(conn, db_url):
    green_at_canary_1(conn)
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"approvals_required\": 1}')")
    with login(db_url, "chat_test_operator") as operator:
        approve(operator, "canary_5", "I checked the dashboards")
        before = snapshot(conn)
        err = refused(operator, "select * from chat_set_v11_rollout_state('canary_5', false, 'promote alone')")
        assert err.diag.sqlstate == "RO041"
        assert err.diag.message_primary == "promotion to canary_5 is refused: approvals are missing"
        assert err.diag.message_detail == (
            "0 of 1 required approvals are valid for promotion to canary_5. The approval of chat_test_operator does "
            "not count for a promotion by chat_test_operator."
        )
        assert "1 more approval(s) from someone other than chat_test_operator (the promoter)" in err.diag.message_hint
        assert "chat_approve_v11_promotion('canary_5', reason)" in err.diag.message_hint
        assert snapshot(conn) == before
    # someone else promotes: the operator's approval counts for them
    new = set_state(conn, "canary_5", False, "promote with four eyes")
    assert (new["stage"], new["action"]) == ("canary_5", "promote")
    assert valid(conn) == []  # the promotion itself changed the stage: the approval is spent


@pytest.mark.parametrize("user", ["chat_test_reader", "chat_test_ingest", "chat_test_admin", "chat_test_nobody"])
def test_a_reader_or_ingest_login_cannot_approve(conn, db_url, user):
    before = fingerprint(conn)
    with login(db_url, user) as c:
        err = refused(c, "select * from chat_approve_v11_promotion('canary_1', 'me too')")
    assert err.diag.sqlstate == "42501"
    assert fingerprint(conn) == before


def test_a_reader_lists_the_approvals(conn, approvers, db_url):
    a, _ = approvers
    approve(a, "canary_1")
    with login(db_url, "chat_test_reader") as reader:
        rows = reader.execute("select stage, approved_by, counts_for_you from chat_get_v11_approvals()").fetchall()
    assert rows == [("canary_1", "chat_test_approver_a", True)]
    assert a.execute("select counts_for_you from chat_get_v11_approvals()").fetchone() == (False,)


@pytest.mark.parametrize(
    "statement",
    [
        "update chat_v11.promotion_approval set reason = 'forged'",
        "delete from chat_v11.promotion_approval",
        "truncate chat_v11.promotion_approval",
    ],
)
def test_approvals_are_append_only_even_for_the_owner(conn, approvers, statement):
    a, _ = approvers
    approve(a, "canary_1")
    err = refused(conn, statement)
    assert err.diag.sqlstate == "RO012"
    assert "append-only" in err.diag.message_primary
    assert conn.execute("select count(*) from chat_v11.promotion_approval").fetchone()[0] == 1


def test_the_approval_chain_is_tamper_evident(conn, approvers):
    a, b = approvers
    approve(a, "canary_1")
    approve(b, "canary_1")
    assert conn.execute("select approvals_chain_ok from chat_get_v11_progression()").fetchone() == (True,)
    second = conn.execute("select prev_hash from chat_v11.promotion_approval where approval_id = 2").fetchone()[0]
    assert second == conn.execute("select hash from chat_v11.promotion_approval where approval_id = 1").fetchone()[0]
    # a superuser who switches the guard off to forge a reason is caught by the chain
    conn.execute("alter table chat_v11.promotion_approval disable trigger promotion_approval_no_update_delete")
    conn.execute("update chat_v11.promotion_approval set reason = 'forged' where approval_id = 1")
    conn.execute("alter table chat_v11.promotion_approval enable trigger promotion_approval_no_update_delete")
    assert conn.execute("select approvals_chain_ok from chat_get_v11_progression()").fetchone() == (False,)
    # and a gap in the ids is refused
    err = refused(
        conn,
        "insert into chat_v11.promotion_approval (approval_id, approved_at, approved_by, stage, from_stage, "
        "state_version, history_hash, reason, prev_hash, hash) values (9, now(), 'x', 'canary_1', 'off', 1, "
        "repeat('0', 64), 'gap', '', '')",
    )
    assert err.diag.sqlstate == "RO012"
