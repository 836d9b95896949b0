"""The rules of SPEC 4.6: kill, resume, hold, rollback, promote, unfreeze."""

from __future__ import annotations

import pytest

from pytest_tests.support.calls import arrange_state, history, refused, set_state, snapshot, state


def test_initial_state_is_off_with_one_init_row(conn):
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("off", False, False, 1)
    assert s["traffic_percent"] == 0
    rows = history(conn)
    assert [(r["version"], r["action"], r["to_stage"]) for r in rows] == [(1, "init", "off")]


def test_kill_switch_is_accepted_while_gates_are_red(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    gates = conn.execute("select gate_p0_ok, rollout_decision from chat_get_v11_release_gates()").fetchone()
    assert gates == (False, "HOLD")
    new = set_state(conn, "canary_1", True, "incident P0")
    assert (new["stage"], new["kill_switch"], new["promotion_frozen"], new["note"]) == ("canary_1", True, True, None)
    last = history(conn, 1)[0]
    assert (last["action"], last["from_kill_switch"], last["to_kill_switch"]) == ("kill", False, True)
    assert last["gate_snapshot"]["gate_p0_ok"] is False
    assert last["reason"] == "incident P0"


@pytest.mark.parametrize("stage_arg", ["canary_99", None, "", "FULL", "full"])
def test_kill_switch_with_a_wrong_stage_argument_is_applied_with_a_note(conn, stage_arg):
    arrange_state(conn, "promote", "canary_1", False, False)
    new = set_state(conn, stage_arg, True, "kill switch")
    assert (new["stage"], new["kill_switch"], new["promotion_frozen"]) == ("canary_1", True, True)
    assert new["note"] and "not applied" in new["note"]
    last = history(conn, 1)[0]
    assert (last["action"], last["to_stage"], last["note"]) == ("kill", "canary_1", new["note"])


def test_kill_switch_with_a_lower_stage_also_rolls_back(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    new = set_state(conn, "canary_1", True, "kill and roll back")
    assert (new["stage"], new["kill_switch"], new["note"]) == ("canary_1", True, None)
    last = history(conn, 1)[0]
    assert (last["action"], last["from_stage"], last["to_stage"]) == ("kill", "canary_5", "canary_1")


def test_kill_switch_raises_a_notice_with_the_note(conn):
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    set_state(conn, "canary_1", True, "kill switch")
    assert any("not applied" in n for n in notices)


def test_resume_is_refused_while_the_p0_exit_criteria_do_not_hold(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    set_state(conn, "canary_1", True, "kill switch")
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO007"
    assert "gate_p0_ok is false" in err.diag.message_detail
    assert err.diag.message_hint
    assert snapshot(conn) == before


def test_resume_to_a_higher_stage_is_refused(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    set_state(conn, "canary_1", True, "kill switch")
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_5', false, 'resume higher')")
    assert err.diag.sqlstate == "RO008"


def test_hold_freezes_promotion_and_is_recorded_each_time(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    for _ in range(2):
        new = set_state(conn, "canary_1", False, "hold")
        assert (new["stage"], new["kill_switch"], new["promotion_frozen"]) == ("canary_1", False, True)
    assert [r["action"] for r in history(conn, 2)] == ["hold", "hold"]


def test_promotion_while_frozen_is_refused(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    set_state(conn, "canary_1", False, "hold")
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_5', false, 'promote')")
    assert err.diag.sqlstate == "RO004"
    assert err.diag.message_hint and err.diag.message_detail
    assert snapshot(conn) == before


def test_promotion_skipping_a_stage_is_refused(conn):
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_5', false, 'promote')")
    assert err.diag.sqlstate == "RO003"
    assert "canary_1" in err.diag.message_detail
    assert snapshot(conn) == before


def test_promotion_without_go_no_go_is_refused_and_names_the_failing_checks(conn):
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'promote')")
    assert err.diag.sqlstate == "RO005"
    assert "gate_p0_ok is false" in err.diag.message_detail
    assert "ack_without_receipt_10s_rate" in err.diag.message_detail
    assert snapshot(conn) == before


def test_rollback_is_always_accepted_and_freezes(conn):
    arrange_state(conn, "promote", "canary_25", False, False)
    new = set_state(conn, "canary_1", False, "rollback to 1%")
    assert (new["stage"], new["traffic_percent"], new["promotion_frozen"]) == ("canary_1", 1, True)
    last = history(conn, 1)[0]
    assert (last["action"], last["from_stage"], last["to_stage"]) == ("rollback", "canary_25", "canary_1")


def test_unknown_stage_without_kill_is_refused(conn):
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_2', false, 'typo')")
    assert err.diag.sqlstate == "RO002"
    assert "canary_1" in err.diag.message_detail
    assert snapshot(conn) == before


def test_unfreeze_is_refused_while_gates_are_not_green(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    set_state(conn, "canary_1", False, "hold")
    before = snapshot(conn)
    err = refused(conn, "select * from chat_lift_v11_freeze('gates look fine')")
    assert err.diag.sqlstate == "RO009"
    assert "gate_p0_ok is false" in err.diag.message_detail
    assert snapshot(conn) == before


def test_unfreeze_is_refused_while_the_kill_switch_is_on(conn):
    set_state(conn, "off", True, "kill switch")
    err = refused(conn, "select * from chat_lift_v11_freeze('unfreeze')")
    assert err.diag.sqlstate == "RO009"
    assert "kill" in err.diag.message_primary


@pytest.mark.parametrize(
    "reason", [None, "", "   ", "\t\n", "x" * 501],
)
def test_an_invalid_reason_is_refused_even_for_the_kill_switch(conn, reason):
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('off', true, %s)", (reason,))
    assert err.diag.sqlstate == "RO001"
    assert err.diag.message_detail and err.diag.message_hint
    assert snapshot(conn) == before


def test_a_reason_is_trimmed_and_any_unicode_is_kept(conn):
    reason = "  откат: рост ERR_RESYNC 🚨 " + "я" * 400 + "  "
    new = set_state(conn, "off", False, reason)
    assert new["reason"] == reason.strip()
    assert history(conn, 1)[0]["reason"] == reason.strip()


def test_a_null_kill_switch_is_refused(conn):
    err = refused(conn, "select * from chat_set_v11_rollout_state('off', null, 'hold')")
    assert err.diag.sqlstate == "RO011"


def test_every_accepted_call_adds_one_version_and_one_history_row(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    v0 = state(conn)["version"]
    set_state(conn, "canary_5", False, "hold")
    set_state(conn, "canary_1", False, "rollback")
    set_state(conn, "canary_1", True, "kill")
    s = state(conn)
    assert s["version"] == v0 + 3
    versions = [r["version"] for r in history(conn)]
    assert versions == list(range(s["version"], 0, -1))


def test_changed_by_is_session_user_and_the_claimed_actor_stands_beside_it(conn):
    conn.execute("set chat.actor = 'deploy-bot'")
    new = set_state(conn, "off", False, "hold")
    assert (new["changed_by"], new["actor"]) == ("postgres", "deploy-bot")
    conn.execute("set role chat_rollout_operator")
    new = set_state(conn, "off", False, "hold as operator role")
    assert new["changed_by"] == "postgres"
    last = history(conn, 1)[0]
    assert (last["changed_by"], last["actor"]) == ("postgres", "deploy-bot")


def test_accepted_change_commits_with_synchronous_commit_on(conn):
    conn.execute("set synchronous_commit = off")
    with conn.transaction():
        set_state(conn, "off", False, "hold")
        assert conn.execute("show synchronous_commit").fetchone()[0] == "on"
    assert conn.execute("show synchronous_commit").fetchone()[0] == "off"
