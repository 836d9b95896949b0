"""With green gates the rollout goes all the way: promotion stage by stage, resume after a clean exit window."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import history, refused, set_state, state
from pytest_tests.support.samples import healthy, put, sample


def test_promotion_off_to_full_with_green_gates_each_stage_observed(conn):
    healthy(conn, 40)
    for stage in ("canary_1", "canary_5", "canary_25", "canary_50", "full"):
        conn.execute("select chat_set_v11_stage_settings(%s, null, '1 second')", (stage,))
    path = ["canary_1", "canary_5", "canary_25", "canary_50", "full"]
    for i, stage in enumerate(path):
        if i > 0:  # the stage just reached must be observed for its window first
            err = refused(conn, "select * from chat_set_v11_rollout_state(%s, false, 'too early')", (stage,))
            assert err.diag.sqlstate == "RO006"
            time.sleep(1.1)
        gates = conn.execute(
            "select promotion_allowed, next_stage, blockers from chat_get_v11_release_gates()"
        ).fetchone()
        assert gates[0] is True and gates[1] == stage, gates[2]
        new = set_state(conn, stage, False, f"promote to {stage}")
        assert (new["stage"], new["promotion_frozen"]) == (stage, False)
    assert [r["action"] for r in history(conn, 5)] == ["promote"] * 5
    assert state(conn)["traffic_percent"] == 100
    assert conn.execute("select next_stage from chat_get_v11_release_gates()").fetchone()[0] is None


def test_resume_after_a_clean_p0_exit_window(conn):
    # a P0 spike 35 minutes ago (late evidence) kills; 35 clean minutes cover the 30-minute exit window
    healthy(conn, 40)
    put(
        conn, [sample("ack_without_receipt_10s_rate", "canary", scenarios.anchor_now() - timedelta(minutes=35), 3, 200)]
    )
    s = state(conn)
    assert s["kill_switch"] is True
    assert history(conn, 1)[0]["action"] == "auto_kill"
    incident = conn.execute("select incident_id, severity from chat_get_v11_incidents()").fetchone()
    assert incident[1] == "P0"  # the automatic kill declared it
    # the incident commander confirms the exit criteria first (SPEC 4.6: no resume under an unresolved P0)
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria hold')", (incident[0],))
    new = set_state(conn, "off", False, "resume controlled")
    assert (new["kill_switch"], new["promotion_frozen"], new["action"]) == (False, True, "resume")
    assert history(conn, 1)[0]["action"] == "resume"
    lifted = conn.execute(
        "select promotion_frozen from chat_lift_v11_freeze('gates green after the resume')"
    ).fetchone()
    assert lifted == (False,)


def test_resume_is_refused_while_the_spike_is_inside_the_exit_window(conn):
    healthy(conn, 40)
    put(
        conn,
        [sample("ack_without_receipt_10s_rate", "control", scenarios.anchor_now() - timedelta(minutes=20), 1, 9000)],
    )
    assert state(conn)["kill_switch"] is True
    gates = conn.execute("select gate_p0_ok from chat_get_v11_release_gates()").fetchone()[0]
    assert gates is True  # the gate's 15-minute window no longer sees it ...
    before = (state(conn), history(conn))
    err = refused(conn, "select * from chat_set_v11_rollout_state('off', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO007"  # ... but the 30-minute exit window does
    assert "ack_without_receipt_10s_rate over the exit window" in err.diag.message_detail
    assert (state(conn), history(conn)) == before


def test_resume_is_refused_when_samples_do_not_cover_the_exit_window(conn):
    healthy(conn, 20)
    set_state(conn, "off", True, "kill")
    err = refused(conn, "select * from chat_set_v11_rollout_state('off', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO007"
    assert "do not cover the exit window" in err.diag.message_detail


def test_promotion_is_refused_on_a_significant_p1_excess(conn):
    healthy(conn, 40)
    conn.execute("select chat_v11.lock_state()")
    conn.execute("select chat_v11.apply_transition('promote', 'canary_1', false, false, 'arranged', null, null, null)")
    t = scenarios.anchor_now()
    put(conn, [sample("full_state_rate", "canary", t - timedelta(seconds=10 * i), 50, 1000) for i in range(60)])
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_5', false, 'promote')")
    assert err.diag.sqlstate == "RO005"
    assert "full_state_rate is fail" in err.diag.message_detail


def test_p_at_an_hour_back_reproduces_the_verdict_of_that_moment(conn):
    conn.execute("select chat_set_v11_policy('auto_kill', 'false')")
    healthy(conn, 90)
    anchor = scenarios.anchor_now()
    put(conn, [sample("timeline_duplicate_detected_rate", "canary", anchor - timedelta(minutes=65), 2, 200)])
    then = anchor - timedelta(minutes=60)
    q = "select gate_p0_ok, rollout_decision, failing_checks from chat_get_v11_release_gates(%s)"
    first = conn.execute(q, (then,)).fetchone()
    assert first[:2] == (False, "ROLLBACK")
    assert first[2] == ["timeline_duplicate_detected_rate: fail"]
    now = conn.execute("select gate_p0_ok, rollout_decision from chat_get_v11_release_gates()").fetchone()
    assert now == (True, "PROCEED")
    put(conn, [sample("full_state_rate", "canary", anchor, 0, 10)])  # later data does not change the past
    assert conn.execute(q, (then,)).fetchone() == first


@pytest.mark.parametrize(
    "bad",
    [
        '{"factor": "x"}',
        '{"window": "-1 minute"}',
        '{"alpha": 0.9}',
        '{"unknown": 1}',
        '{"threshold": 0.5}',
        "{}",
        '{"freshness": "2 hours"}',
    ],
)
def test_invalid_metric_rules_are_refused(conn, bad):
    metric = "ack_without_receipt_10s_rate" if "threshold" in bad else "full_state_rate"
    before = conn.execute("select * from chat_v11.metric order by ordinal").fetchall()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select * from chat_set_v11_metric_rule(%s, %s::jsonb)", (metric, bad))
    assert info.value.diag.sqlstate == "RO016"
    assert conn.execute("select * from chat_v11.metric order by ordinal").fetchall() == before


def test_a_metric_rule_change_is_applied_and_audited(conn):
    row = conn.execute(
        "select \"window\", factor, static_baseline from chat_set_v11_metric_rule('full_state_rate', "
        '\'{"window": "20 minutes", "factor": 2, "static_baseline": 0.004}\')'
    ).fetchone()
    assert (str(row[0]), float(row[1]), float(row[2])) == ("0:20:00", 2.0, 0.004)
    target = conn.execute("select target, target_key from chat_v11.config_change").fetchall()
    assert target == [("metric_rule", "full_state_rate")]
    err = refused(conn, "select * from chat_set_v11_metric_rule('nope', '{\"factor\": 2}')")
    assert err.diag.sqlstate == "RO021"
