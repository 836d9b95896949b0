"""Table-driven scenarios (scenarios/*.toml): metric timelines and the decisions expected at checkpoints."""

from __future__ import annotations

import pytest

from chat_rollout import scenarios


@pytest.mark.parametrize("name", scenarios.names())
def test_scenario_checkpoints(conn, name):
    scenario = scenarios.load(name)
    anchor = scenarios.anchor_now()
    conn.execute("select chat_set_v11_policy('auto_kill', 'false')")  # judge the data, not the guardrail
    scenarios.apply_rules(conn, scenario)
    samples = scenario.samples(anchor)
    assert scenarios.write_samples(conn, samples) == len(samples)
    assert scenario.checkpoints, f"{name} has no checkpoint"
    for checkpoint in scenario.checkpoints:
        # every checkpoint states the whole verdict: both gates, the decision, the Go/No-Go, the failing checks
        assert {"gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed"} <= set(checkpoint.expect), (
            f"{name} at {checkpoint.at}: incomplete expectations {checkpoint.expect}"
        )
        assert checkpoint.failing is not None, f"{name} at {checkpoint.at}: no expected failing checks"
        got = scenarios.evaluate(conn, scenario, checkpoint, anchor)
        where = f"{name} at {checkpoint.at} ({checkpoint.stage}, kill switch {checkpoint.kill_switch})"
        for key, expected in checkpoint.expect.items():
            assert got[key] == expected, f"{where}: {key} is {got[key]!r}, expected {expected!r}; {got}"
        for metric, status in checkpoint.statuses.items():
            assert got["statuses"][metric] == status, f"{where}: {metric} is {got['statuses'][metric]}"
        if checkpoint.failing is not None:
            assert got["failing"] == sorted(checkpoint.failing), f"{where}: failing checks {got['failing']}"


def test_every_scenario_named_by_the_issue_exists():
    assert {
        "healthy_canary", "p0_ack_spike", "resync_range_unavailable_spike", "stale_feed", "low_volume",
        "missing_baseline", "recovery_after_kill", "p1_excess_tiny_volume", "p1_excess_large_volume",
    } <= set(scenarios.names())
