"""Issue 12 / SPEC 4.6, the no-surprise rule: the playbook's section 8 call shape (stage, false, reason) freezes,
rolls back or resumes depending on the state, so the result names the action and a NOTICE says in words whatever
moved traffic or the kill switch beyond what the stage argument says. A resume also waits for the incident
commander to resolve the open P0 incident, and a refused resume names the earliest time it can succeed."""

from __future__ import annotations

from datetime import timedelta

from chat_rollout import scenarios
from chat_rollout.utc import utc
from pytest_tests.support.calls import arrange_state, history, refused, set_state, snapshot, state
from pytest_tests.support.samples import healthy_p0, put, sample


def notices(conn) -> list[str]:
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(d.message_primary))
    return seen


def test_the_hold_call_at_the_current_stage_only_freezes_and_says_hold(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    seen = notices(conn)
    row = set_state(conn, "canary_1", False, "hold")
    assert (row["action"], row["stage"], row["kill_switch"]) == ("hold", "canary_1", False)
    assert row["promotion_frozen"] is True
    assert row["note"] is None and seen == []
    assert history(conn, 1)[0]["action"] == "hold"


def test_the_hold_call_with_a_lower_stage_rolls_back_and_a_notice_says_so(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    seen = notices(conn)
    row = set_state(conn, "canary_1", False, "hold")
    assert (row["action"], row["stage"], row["traffic_percent"]) == ("rollback", "canary_1", 1)
    assert len(seen) == 1 and seen[0].startswith("rollback:")
    assert "canary_5" in seen[0] and "canary_1 (1.00 %)" in seen[0]


def test_a_kill_with_a_lower_stage_says_it_rolled_back(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    seen = notices(conn)
    row = set_state(conn, "canary_1", True, "incident P0")
    assert (row["action"], row["stage"], row["kill_switch"]) == ("kill", "canary_1", True)
    assert any(n.startswith("kill:") and "rolled back from canary_5 to canary_1" in n for n in seen)


def _auto_killed_with_a_clean_exit_window(conn) -> int:
    """An automatic kill 35 minutes ago opened P0 incident 1; the exit window has been clean since."""
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-36), anchor))
    put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
    put(conn, healthy_p0(timedelta(minutes=-31, seconds=-50), timedelta(0), anchor))
    assert state(conn)["kill_switch"] is True
    (incident_id,) = conn.execute("select incident_id from chat_get_v11_incidents() where severity = 'P0'").fetchone()
    return incident_id


def test_with_the_kill_on_the_hold_call_does_not_resume_while_the_p0_incident_is_unresolved(conn):
    incident_id = _auto_killed_with_a_clean_exit_window(conn)
    assert conn.execute("select gate_p0_ok from chat_get_v11_release_gates()").fetchone()[0] is True
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'hold')")
    assert err.diag.sqlstate == "RO018"
    assert f"incident {incident_id}" in err.diag.message_primary
    assert "status open" in err.diag.message_detail
    assert "promotion is already frozen while the kill switch is on" in err.diag.message_hint
    assert f"chat_set_v11_incident_status({incident_id}, 'resolved'" in err.diag.message_hint
    assert snapshot(conn) == before


def test_a_mitigated_p0_incident_still_blocks_the_resume(conn):
    incident_id = _auto_killed_with_a_clean_exit_window(conn)
    conn.execute("select chat_set_v11_incident_status(%s, 'mitigated', 'kill switch holds')", (incident_id,))
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO018" and "status mitigated" in err.diag.message_detail


def test_once_the_ic_resolves_the_same_call_resumes_and_a_notice_says_the_kill_switch_is_off(conn):
    incident_id = _auto_killed_with_a_clean_exit_window(conn)
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    seen = notices(conn)
    row = set_state(conn, "canary_1", False, "resume controlled")
    assert (row["action"], row["kill_switch"], row["promotion_frozen"]) == ("resume", False, True)
    assert len(seen) == 1 and seen[0].startswith("resume: the kill switch is now OFF")
    assert "canary_1 (1.00 %)" in seen[0]


def test_a_refused_resume_names_the_earliest_time_the_exit_window_can_be_clean(conn):
    anchor = scenarios.anchor_now()
    arrange_state(conn, "kill", "canary_1", True, True)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(0), anchor))
    spike = anchor - timedelta(minutes=5)
    put(conn, [sample("timeline_duplicate_detected_rate", "control", spike, 2, 20000)])
    before = snapshot(conn)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'hold')")
    assert err.diag.sqlstate == "RO007"
    expected = utc(spike + timedelta(minutes=30))
    assert f"can be clean at {expected} at the earliest" in err.diag.message_detail
    assert "asks to resume" in err.diag.message_primary
    assert err.diag.message_hint.startswith("To hold, do nothing: promotion is already frozen")
    assert snapshot(conn) == before


def test_a_refused_resume_without_any_p0_data_says_no_time_can_be_named(conn):
    arrange_state(conn, "kill", "canary_1", True, True)
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'resume')")
    assert err.diag.sqlstate == "RO007"
    assert "No time can be named yet" in err.diag.message_detail


def test_every_result_names_its_action(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    actions = [
        set_state(conn, "canary_1", False, "hold")["action"],
        set_state(conn, "off", False, "back off")["action"],
        set_state(conn, "off", True, "stop")["action"],
    ]
    assert actions == ["hold", "rollback", "kill"]
    cur = conn.cursor()
    cur.execute("select * from chat_set_v11_rollout_state('off', true, 'again')")
    assert [c.name for c in cur.description][-2:] == ["action", "note"]
