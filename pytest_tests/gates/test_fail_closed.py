"""SPEC 4.5 columns, failing closed: with no metric data nothing passes and the decision is HOLD."""

from __future__ import annotations

import time

from pytest_tests.support.calls import arrange_state, checks, gates, set_state

GATE_COLUMNS = [
    "gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed", "stage", "kill_switch",
    "promotion_frozen", "open_incident_id", "next_stage", "evaluated_at", "failing_checks", "blockers",
]
CHECK_COLUMNS = [
    "metric", "severity", "scope", "window", "value", "baseline", "threshold", "volume", "status", "explanation",
]
P0 = {
    "ack_without_receipt_10s_rate", "timeline_duplicate_detected_rate", "read_rollback_detected_rate",
    "send_stall_rate", "pending_forever_count",
}
P1 = {"resync_range_unavailable_rate", "full_state_rate", "forced_resync_rate", "recovery_p95_ms"}


def test_release_gates_have_the_spec_columns(conn):
    cur = conn.execute("select * from chat_get_v11_release_gates()")
    assert [c.name for c in cur.description] == GATE_COLUMNS
    cur = conn.execute("select * from chat_get_v11_gate_checks()")
    assert [c.name for c in cur.description] == CHECK_COLUMNS


def test_without_metric_data_p0_is_not_ok_and_the_decision_is_hold(conn):
    g = gates(conn)
    assert (g["gate_p0_ok"], g["rollout_decision"], g["promotion_allowed"]) == (False, "HOLD", False)
    assert g["gate_p1_ok"] is True  # stage off: P1 not applicable, no v1.1 traffic by design
    assert "gate_p0_ok is false" in g["blockers"]
    assert any("ack_without_receipt_10s_rate is inconclusive" in b for b in g["blockers"])
    assert set(checks(conn)) == P0 | P1


def test_every_p0_check_is_inconclusive_never_pass_without_data(conn):
    for metric, row in checks(conn).items():
        if metric in P0:
            assert row["status"] == "inconclusive", metric
            assert "no samples" in row["explanation"]


def test_p1_checks_are_not_applicable_at_stage_off_and_while_killed(conn):
    assert {checks(conn)[m]["status"] for m in P1} == {"not_applicable"}
    arrange_state(conn, "promote", "canary_1", False, False)
    assert {checks(conn)[m]["status"] for m in P1} == {"inconclusive"}
    assert gates(conn)["gate_p1_ok"] is False
    set_state(conn, "canary_1", True, "kill")
    assert {checks(conn)[m]["status"] for m in P1} == {"not_applicable"}
    assert gates(conn)["gate_p1_ok"] is True


def test_blockers_name_the_freeze_the_kill_switch_and_the_observation_window(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    g = gates(conn)
    assert g["next_stage"] == "canary_5"
    assert any("must be observed for 00:30:00" in b for b in g["blockers"])
    set_state(conn, "canary_1", False, "hold")
    assert any("promotion is frozen" in b for b in gates(conn)["blockers"])
    set_state(conn, "canary_1", True, "kill")
    assert any("kill switch is on" in b for b in gates(conn)["blockers"])


def test_last_stage_has_no_next_stage(conn):
    arrange_state(conn, "promote", "full", False, False)
    g = gates(conn)
    assert g["next_stage"] is None
    assert any("last stage" in b for b in g["blockers"])


def test_p_at_re_evaluates_the_state_in_force_at_a_past_moment(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    t_canary = conn.execute("select clock_timestamp()").fetchone()[0]
    time.sleep(0.01)
    set_state(conn, "canary_1", True, "kill")
    now = gates(conn)
    then = gates(conn, t_canary)
    assert (now["stage"], now["kill_switch"], now["promotion_frozen"]) == ("canary_1", True, True)
    assert (then["stage"], then["kill_switch"], then["promotion_frozen"]) == ("canary_1", False, False)
    assert then["evaluated_at"] == t_canary
    assert checks(conn, t_canary)["full_state_rate"]["status"] == "inconclusive"
    assert checks(conn)["full_state_rate"]["status"] == "not_applicable"
    before_init = gates(conn, "2000-01-01T00:00:00Z")
    assert (before_init["stage"], before_init["kill_switch"]) == ("off", False)


def test_history_rows_keep_the_gate_snapshot_of_their_moment(conn):
    conn.execute("select chat_set_v11_rollout_state('off', true, 'kill')")
    row = conn.execute("select gate_snapshot from chat_get_v11_rollout_history(1)").fetchone()[0]
    assert row["gate_p0_ok"] is False and row["rollout_decision"] == "HOLD"
    assert "ack_without_receipt_10s_rate: inconclusive" in row["failing_checks"]
