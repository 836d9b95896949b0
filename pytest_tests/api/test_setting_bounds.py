"""Issue 12 (parts 1): every setting that feeds a computation is bounded. The attacker's repros (an admin login) are
refused with the project SQLSTATE (RO014 policy, RO015 stage settings, RO016 metric rule), with the value and the
allowed range in DETAIL and a HINT; nothing changes (catalog and config audit); gates, hold, rollback and the
guardrails still work afterwards. The bounds are the table of README's configuration section."""

from __future__ import annotations

import json

import pytest

from pytest_tests.support.calls import arrange_state, history, login, refused, set_state, state


def configuration(conn) -> tuple:
    """Every configuration table and the audit, to prove a refusal changed nothing."""
    return tuple(
        conn.execute(f"select coalesce(jsonb_agg(to_jsonb(t) order by t::text), '[]') from chat_v11.{table} t")
        .fetchone()[0]
        for table in ("stage", "policy", "metric", "config_change")
    )


def still_works(conn) -> None:
    """Gates, hold, rollback and the guardrails answer (no 22008) at a canary stage."""
    arrange_state(conn, "promote", "canary_5", False, False)
    gates = conn.execute("select rollout_decision, blockers from chat_get_v11_release_gates()").fetchone()
    assert gates[0] == "HOLD"
    assert len(conn.execute("select * from chat_get_v11_gate_checks()").fetchall()) == 9
    assert [a for a, *_ in conn.execute("select * from chat_run_v11_guardrails()").fetchall()] == ["hold"]
    set_state(conn, "canary_5", False, "hold after the refused setting")
    assert history(conn, 1)[0]["action"] == "hold"
    set_state(conn, "canary_1", False, "roll back after the refused setting")
    assert (history(conn, 1)[0]["action"], state(conn)["stage"]) == ("rollback", "canary_1")
    assert conn.execute("select count(*) from chat_run_v11_maintenance()").fetchone()[0] == 0


# --- the repros, as the attacker wrote them ------------------------------------------------------------------------

REPROS = [
    ("select * from chat_set_v11_stage_settings('canary_1', NULL, '178000000 years')", "RO015", "178000000 years"),
    ("select * from chat_set_v11_policy('retention', '\"10000 years\"')", "RO014", "10000 years"),
    ("select * from chat_set_v11_metric_rule('send_stall_rate', '{\"threshold\": -1}')", "RO016", "threshold -1"),
    ("select * from chat_set_v11_metric_rule('send_stall_rate', '{\"threshold\": 5}')", "RO016", "threshold 5"),
    ("select * from chat_set_v11_metric_rule('send_stall_rate', '{\"threshold\": 1}')", "RO016", "threshold 1"),
]


@pytest.mark.parametrize("sql,sqlstate,shown", REPROS, ids=["min-observation", "retention", "threshold-negative",
                                                              "threshold-5", "threshold-1"])
def test_the_repro_is_refused_changes_nothing_and_everything_still_works(conn, db_url, sql, sqlstate, shown):
    arrange_state(conn, "promote", "canary_1", False, False)
    before, versions = configuration(conn), (state(conn), history(conn))
    with login(db_url, "chat_test_admin") as admin:
        err = refused(admin, sql)
    assert err.sqlstate == sqlstate
    assert shown in err.diag.message_detail, err.diag.message_detail
    assert err.diag.message_hint
    assert configuration(conn) == before
    assert (state(conn), history(conn)) == versions
    still_works(conn)


def test_a_full_send_stall_still_fails_the_p0_gate_after_the_refused_threshold(conn):
    """The threshold stays 0.01: a 100 % stall in the canary fails send_stall_rate (with auto_kill off, no kill)."""
    from datetime import timedelta

    from chat_rollout import scenarios
    from pytest_tests.support.samples import healthy_p0, put, sample

    conn.execute("select chat_set_v11_policy('auto_kill', 'false')")
    refused(conn, "select * from chat_set_v11_metric_rule('send_stall_rate', '{\"threshold\": 5}')")
    anchor = scenarios.anchor_now()
    put(conn, healthy_p0(timedelta(minutes=-5), timedelta(0), anchor))
    put(conn, [sample("send_stall_rate", "canary", anchor, 200, 200)])
    status = conn.execute(
        "select status from chat_get_v11_gate_checks() where metric = 'send_stall_rate'"
    ).fetchone()[0]
    assert status == "fail"


# --- every bound, at and beyond its edge ---------------------------------------------------------------------------

STAGE = [
    ("canary_1", None, "7 days", None),
    ("canary_1", None, "0", None),
    ("canary_1", None, "7 days 1 second", "RO015"),
    ("canary_1", None, "8 days", "RO015"),
    ("canary_1", None, "1 mon", "RO015"),
    ("canary_1", None, "-1 second", "RO015"),
    ("canary_5", 1e300, None, "RO015"),
]


@pytest.mark.parametrize("stage,percent,window,sqlstate", STAGE)
def test_stage_setting_bounds(conn, stage, percent, window, sqlstate):
    before = configuration(conn)
    sql = "select * from chat_set_v11_stage_settings(%s, %s::numeric, %s::interval)"
    if sqlstate is None:
        conn.execute(sql, (stage, percent, window))
        assert configuration(conn) != before
        return
    err = refused(conn, sql, (stage, percent, window))
    assert err.sqlstate == sqlstate
    assert err.diag.message_detail and err.diag.message_hint
    assert "between" in err.diag.message_detail
    assert configuration(conn) == before


POLICY = [
    ("p0_exit_window", "30 minutes", None),
    ("p0_exit_window", "60 minutes", None),
    ("p0_exit_window", "29 minutes", "RO014"),
    ("p0_exit_window", "61 minutes", "RO014"),
    ("state_lock_timeout", "100 milliseconds", None),
    ("state_lock_timeout", "60 seconds", None),
    ("state_lock_timeout", "99 milliseconds", "RO014"),
    ("state_lock_timeout", "61 seconds", "RO014"),
    ("retention", "1 day", None),
    ("retention", "400 days", None),
    ("retention", "23 hours", "RO014"),
    ("retention", "401 days", "RO014"),
    ("retention", "178000000 years", "RO014"),
]


@pytest.mark.parametrize("key,value,sqlstate", POLICY)
def test_policy_bounds(conn, key, value, sqlstate):
    before = configuration(conn)
    sql = "select * from chat_set_v11_policy(%s, %s::jsonb)"
    if sqlstate is None:
        conn.execute(sql, (key, json.dumps(value)))
        assert configuration(conn) != before
        return
    err = refused(conn, sql, (key, json.dumps(value)))
    assert err.sqlstate == sqlstate
    assert value in err.diag.message_detail or "got" in err.diag.message_detail
    assert "between" in err.diag.message_detail
    assert err.diag.message_hint
    assert configuration(conn) == before


RULES = [
    # window and freshness, every metric
    ("full_state_rate", {"window": "1 minute", "freshness": "1 minute"}, None),
    ("full_state_rate", {"window": "1 day"}, None),
    ("full_state_rate", {"window": "59 seconds", "freshness": "30 seconds"}, "window"),
    ("full_state_rate", {"window": "25 hours"}, "window"),
    ("send_stall_rate", {"freshness": "10 seconds"}, None),
    ("send_stall_rate", {"freshness": "5 seconds"}, "freshness"),
    ("send_stall_rate", {"freshness": "16 minutes"}, "freshness"),
    # min_volume
    ("full_state_rate", {"min_volume": 1}, None),
    ("full_state_rate", {"min_volume": 0}, "min_volume"),
    ("full_state_rate", {"min_volume": 1.5}, "min_volume"),
    ("full_state_rate", {"min_volume": 1e10}, "min_volume"),
    ("recovery_p95_ms", {"min_volume": 180}, None),
    ("recovery_p95_ms", {"min_volume": 181}, "min_volume"),
    ("pending_forever_count", {"min_volume": 0}, "min_volume"),
    # factor, slack, alpha (P1)
    ("full_state_rate", {"factor": 1}, None),
    ("full_state_rate", {"factor": 10}, None),
    ("full_state_rate", {"factor": 0.9}, "factor"),
    ("full_state_rate", {"factor": 11}, "factor"),
    ("full_state_rate", {"slack": 0}, None),
    ("full_state_rate", {"slack": 0.1}, None),
    ("full_state_rate", {"slack": -0.001}, "slack"),
    ("full_state_rate", {"slack": 0.2}, "slack"),
    ("full_state_rate", {"alpha": 0.49}, None),
    ("full_state_rate", {"alpha": 0.5}, "alpha"),
    ("full_state_rate", {"alpha": 0}, "alpha"),
    # threshold (the P0 threshold rule)
    ("send_stall_rate", {"threshold": 0}, None),
    ("send_stall_rate", {"threshold": 0.5}, None),
    ("send_stall_rate", {"threshold": 0.51}, "threshold"),
    ("send_stall_rate", {"threshold": -0.01}, "threshold"),
    # static baseline, per kind
    ("full_state_rate", {"static_baseline": 0.5}, None),
    ("full_state_rate", {"static_baseline": None}, None),
    ("full_state_rate", {"static_baseline": 0.6}, "static_baseline"),
    ("full_state_rate", {"static_baseline": 0.5, "factor": 2}, "static_baseline"),  # limit 1.001: never fails
    ("recovery_p95_ms", {"static_baseline": 800}, None),
    ("recovery_p95_ms", {"static_baseline": 0}, "static_baseline"),
    ("recovery_p95_ms", {"static_baseline": 600001}, "static_baseline"),
    # keys the rule does not read
    ("send_stall_rate", {"factor": 2}, "do not apply"),
    ("ack_without_receipt_10s_rate", {"threshold": 0.5}, "do not apply"),
    ("full_state_rate", {"threshold": 0.5}, "do not apply"),
    ("recovery_p95_ms", {"slack": 0.001}, "do not apply"),
    ("recovery_p95_ms", {"alpha": 0.01}, "do not apply"),
    ("pending_forever_count", {"threshold": 1}, "do not apply"),
]


@pytest.mark.parametrize("metric,settings,problem", RULES, ids=[f"{m}-{json.dumps(s)}" for m, s, _ in RULES])
def test_metric_rule_bounds(conn, metric, settings, problem):
    before = configuration(conn)
    sql = "select * from chat_set_v11_metric_rule(%s, %s::jsonb)"
    if problem is None:
        conn.execute(sql, (metric, json.dumps(settings)))
        assert configuration(conn) != before
        return
    err = refused(conn, sql, (metric, json.dumps(settings)))
    assert err.sqlstate == "RO016"
    assert problem in err.diag.message_primary + " " + err.diag.message_detail, err.diag.message_detail
    assert err.diag.message_hint and "Nothing was changed" in err.diag.message_hint
    assert configuration(conn) == before
