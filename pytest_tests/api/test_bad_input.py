"""Bad input for every API function: a documented project SQLSTATE, a HINT, and nothing changed anywhere.

Table-driven: each case names the function it attacks, the call, and either the SQLSTATE it must raise (README's
error-code table) or OK (a read or idempotent run that must succeed and change nothing). Every public
chat_*_v11_* function found in the catalog must appear in CASES. Text that is legitimately free-form (a reason,
an incident summary, a timeline entry) is stored verbatim, injection strings included: see the verbatim tests.
"""

from __future__ import annotations

import json
import math

import psycopg
import pytest

from pytest_tests.support.databases import chat_tables, fingerprint

OK = "OK"
MB = "x" * (1024 * 1024)
INJECTIONS = [
    "'); drop table chat_v11.rollout_history; --",
    "off'; delete from chat_v11.rollout_history; --",
    "\"; truncate chat_v11.incident; --",
    "$$; drop schema chat_v11 cascade; $$",
    "canary_1' or '1'='1",
]
ALIGNED = "2026-01-01T00:00:00Z"  # a past, aligned bucket (well inside the 30-day retention is not needed)


def pull(**overrides) -> str:
    item = {
        "metric": "full_state_rate",
        "cohort": "canary",
        "bucket_start": ALIGNED,
        "field": "numerator",
        "query": "query=sum(increase(chat_full_state_total[10s]))&time=1767225610",
        "query_time": "2026-01-01T00:00:10Z",
        "outcome": "value",
        "value": 3,
        "answer_sha256": "0" * 64,
        "answer_excerpt": "{}",
    }
    item.update(overrides)
    return json.dumps(item)


def pulls(**overrides) -> str:
    return f"[{pull(**overrides)}]"


def alert(**overrides) -> str:
    item = {
        "alertname": "ChatAckSpike",
        "severity": "P1",
        "startsAt": ALIGNED,
        "fingerprint": "4a0e4b0c2c3d1e2f",
        "silenced": False,
    }
    item.update(overrides)
    return json.dumps([item])


def sample(**overrides) -> str:
    item = {
        "metric": "full_state_rate",
        "cohort": "canary",
        "bucket_start": ALIGNED,
        "numerator": 0,
        "denominator": 10,
    }
    item.update(overrides)
    for key in [k for k, v in overrides.items() if v is _DROP]:
        del item[key]
    return json.dumps([item])


_DROP = object()
GOOD_COLUMNS = (["full_state_rate"], ["canary"], [ALIGNED], [0], [10], [None])


def columnar(**overrides) -> tuple:
    names = ["metrics", "cohorts", "starts", "numerators", "denominators", "values"]
    cols = dict(zip(names, GOOD_COLUMNS, strict=True))
    cols.update(overrides)
    return tuple(cols[n] for n in names)


COLUMNAR = "select public.chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], " \
    "%s::bigint[], %s::float8[])"
FUTURE_ALIGNED = "select public.chat_put_v11_metric_samples(jsonb_build_array(jsonb_build_object(" \
    "'metric', 'full_state_rate', 'cohort', 'canary', 'numerator', 0, 'denominator', 10, 'bucket_start', " \
    "to_char(date_bin('10 seconds', now() + interval '1 hour', timestamptz '2000-01-01') at time zone 'UTC', " \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))))"


# a reason made only of NO-BREAK SPACE, ZERO WIDTH SPACE and IDEOGRAPHIC SPACE is blank ([[:space:]] alone follows
# the database's ctype and would not trim them)
UNICODE_BLANK = "\u00a0\u200b\u3000"


# (id, function name, SQL, params, expected SQLSTATE or OK[, marks])
CASES = [
    # --- chat_get_v11_rollout_state / incidents / verify: no argument; a hostile claimed actor changes nothing
    ("state-actor-injection", "chat_get_v11_rollout_state", "select * from public.chat_get_v11_rollout_state()",
     None, OK),
    ("incidents-actor-injection", "chat_get_v11_incidents", "select * from public.chat_get_v11_incidents()", None,
     OK),
    ("verify-actor-injection", "chat_verify_v11_history", "select * from public.chat_verify_v11_history()", None,
     OK),
    ("verify-anchor-not-a-hash", "chat_verify_v11_history",
     "select * from public.chat_verify_v11_history(1, 'deadbeef')", None, "RO011"),
    ("verify-anchor-half", "chat_verify_v11_history", "select * from public.chat_verify_v11_history(1, null)", None,
     "RO011"),
    ("verify-anchor-version-zero", "chat_verify_v11_history",
     "select * from public.chat_verify_v11_history(0, repeat('0', 64))", None, "RO011"),
    ("verify-full-anchor-uppercase", "chat_verify_v11_history_full",
     "select * from public.chat_verify_v11_history_full(1, repeat('A', 64))", None, "RO011"),
    ("verify-full-actor-injection", "chat_verify_v11_history_full",
     "select * from public.chat_verify_v11_history_full()", None, OK),
    ("checkpoint-null-full", "chat_checkpoint_v11_history",
     "select * from public.chat_checkpoint_v11_history(null)", None, "RO011"),
    ("guardrails-actor-injection", "chat_run_v11_guardrails", "select * from public.chat_run_v11_guardrails()",
     None, OK),
    ("maintenance-actor-injection", "chat_run_v11_maintenance", "select * from public.chat_run_v11_maintenance()",
     None, OK),
    # --- chat_get_v11_rollout_history(p_limit)
    ("history-null", "chat_get_v11_rollout_history", "select * from public.chat_get_v11_rollout_history(%s)",
     (None,), "RO011"),
    ("history-zero", "chat_get_v11_rollout_history", "select * from public.chat_get_v11_rollout_history(0)",
     None, "RO011"),
    ("history-negative", "chat_get_v11_rollout_history",
     "select * from public.chat_get_v11_rollout_history(-2147483648)", None, "RO011"),
    ("history-max-int", "chat_get_v11_rollout_history",
     "select * from public.chat_get_v11_rollout_history(2147483647)", None, OK),
    # --- chat_get_v11_release_gates(p_at) / chat_get_v11_gate_checks(p_at)
    *[
        (f"{short}-{label}", fn, f"select * from public.{fn}(%s::timestamptz)", (value,), expected, *marks)
        for fn, short in [("chat_get_v11_release_gates", "gates"), ("chat_get_v11_gate_checks", "checks")]
        for label, value, expected, *marks in [
            ("null-means-now", None, OK),
            ("infinity", "infinity", OK),
            ("minus-infinity", "-infinity", OK),
            ("far-future", "9999-12-31T23:59:59Z", OK),
            ("far-past", "1970-01-01T00:00:00Z", OK),
        ]
    ],
    # --- chat_get_v11_metric_rules() / chat_get_v11_metric_samples(p_from, p_to): a range that runs forward, <= 31 days
    ("metric-rules-actor-injection", "chat_get_v11_metric_rules", "select * from public.chat_get_v11_metric_rules()",
     None, OK),
    *[
        (f"samples-{label}", "chat_get_v11_metric_samples",
         "select * from public.chat_get_v11_metric_samples(%s::timestamptz, %s::timestamptz)", values, expected)
        for label, values, expected in [
            ("null-from", (None, "2026-01-01T00:00:00Z"), "RO011"),
            ("null-to", ("2026-01-01T00:00:00Z", None), "RO011"),
            ("reversed", ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"), "RO011"),
            ("32-days", ("2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z"), "RO011"),
            ("31-days", ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"), OK),
            ("one-instant", ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), OK),
            ("infinity", ("-infinity", "infinity"), "RO011"),
        ]
    ],
    ("metric-sources", "chat_get_v11_metric_sources", "select * from public.chat_get_v11_metric_sources()", None, OK),
    *[
        (f"pulls-range-{label}", "chat_get_v11_metric_pulls",
         "select * from public.chat_get_v11_metric_pulls(%s::timestamptz, %s::timestamptz)", values, expected)
        for label, values, expected in [
            ("null-from", (None, "2026-01-01T00:00:00Z"), "RO011"),
            ("reversed", ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"), "RO011"),
            ("32-days", ("2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z"), "RO011"),
            ("31-days", ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"), OK),
            ("infinity", ("-infinity", "infinity"), "RO011"),
        ]
    ],
    # --- chat_set_v11_rollout_state(p_stage, p_kill_switch, p_reason)
    *[
        (f"set-state-stage-{i}", "chat_set_v11_rollout_state",
         "select * from public.chat_set_v11_rollout_state(%s, false, 'hold')", (stage,), "RO002")
        for i, stage in enumerate([None, "", "OFF", " off", MB, *INJECTIONS])
    ],
    ("set-state-kill-null", "chat_set_v11_rollout_state",
     "select * from public.chat_set_v11_rollout_state('off', null, 'hold')", None, "RO011"),
    *[
        (f"set-state-reason-{label}", "chat_set_v11_rollout_state",
         "select * from public.chat_set_v11_rollout_state('off', true, %s)", (reason,), "RO001",
         )
        for label, reason in [("null", None), ("empty", ""), ("blank", " \t\r\n\f\v "), ("501", "r" * 501),
                              ("1mb", MB), ("unicode-blank", UNICODE_BLANK)]
    ],
    # --- chat_lift_v11_freeze(p_reason)
    *[
        (f"lift-reason-{label}", "chat_lift_v11_freeze", "select * from public.chat_lift_v11_freeze(%s)", (reason,),
         "RO001")
        for label, reason in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    ("lift-gates-red", "chat_lift_v11_freeze", "select * from public.chat_lift_v11_freeze(%s)", (INJECTIONS[0],),
     "RO009"),
    # --- chat_set_v11_stage_settings(p_stage, p_traffic_percent, p_min_observation)
    *[
        (f"stage-settings-stage-{i}", "chat_set_v11_stage_settings",
         "select * from public.chat_set_v11_stage_settings(%s, 2, '1 hour')", (stage,), "RO002")
        for i, stage in enumerate([None, "", "canary_2", MB, *INJECTIONS])
    ],
    *[
        (f"stage-settings-percent-{label}", "chat_set_v11_stage_settings",
         "select * from public.chat_set_v11_stage_settings('canary_1', %s::numeric, null)", (value,), "RO015",
         *marks)
        for label, value, *marks in [
            ("negative", "-1"), ("above-100", "100.01"), ("nan", "NaN"),
            ("huge", "1e300"),
            ("out-of-order", "60"),
        ]
    ],
    *[
        (f"stage-settings-window-{label}", "chat_set_v11_stage_settings",
         "select * from public.chat_set_v11_stage_settings('canary_1', null, %s::interval)", (value,), "RO015")
        for label, value in [("negative", "-1 second"), ("mixed-negative", "1 day -25 hours")]
    ],
    # --- chat_set_v11_policy(p_key, p_value)
    *[
        (f"policy-key-{i}", "chat_set_v11_policy", "select * from public.chat_set_v11_policy(%s, 'true')", (key,),
         "RO014")
        for i, key in enumerate([None, "", "AUTO_KILL", MB, *INJECTIONS])
    ],
    *[
        (f"policy-{key}-{label}", "chat_set_v11_policy", "select * from public.chat_set_v11_policy(%s, %s::jsonb)",
         (key, value), "RO014", *marks)
        for key, label, value, *marks in [
            ("auto_kill", "null", None),
            ("auto_kill", "json-null", "null"),
            ("auto_kill", "string", '"yes"'),
            ("auto_kill", "number", "1"),
            ("p0_exit_window", "too-short", '"10 minutes"'),
            ("p0_exit_window", "too-long", '"61 minutes"'),
            ("p0_exit_window", "not-interval", '"half an hour"'),
            ("p0_exit_window", "number", "30"),
            ("p0_exit_window", "injection", json.dumps(INJECTIONS[0])),
            ("state_lock_timeout", "negative", '"-1 second"'),
            ("state_lock_timeout", "huge", '"1000000000 years"'),
            ("state_lock_timeout", "1mb", json.dumps(MB)),
            ("retention", "zero", '"0 seconds"'),
            ("retention", "array", "[]"),
            ("alert_source", "null", None),
            ("alert_source", "string", '"2 minutes"'),
            ("alert_source", "too-short", '{"required": true, "max_age": "29 seconds"}'),
            ("alert_source", "huge", '{"required": true, "max_age": "1000000000 years"}'),
            ("alert_source", "1mb", json.dumps({"required": True, "max_age": MB})),
            ("assignment_salt", "null", None),
            ("assignment_salt", "number", "7"),
            ("assignment_salt", "blank", '"   "'),
            ("assignment_salt", "empty", '""'),
            ("assignment_salt", "1mb", json.dumps(MB)),
            ("approval_ttl", "null", None),
            ("approval_ttl", "too-short", '"4 minutes"'),
            ("approval_ttl", "too-long", '"8 days"'),
            ("approval_ttl", "number", "24"),
            ("approval_ttl", "injection", json.dumps(INJECTIONS[0])),
        ]
    ],
    # --- chat_set_v11_stage_policy(p_stage, p_settings)
    *[
        (f"stage-policy-stage-{i}", "chat_set_v11_stage_policy",
         "select * from public.chat_set_v11_stage_policy(%s, '{\"auto_promote\": true}')", (stage,), "RO002")
        for i, stage in enumerate([None, "", "canary_2", MB, *INJECTIONS])
    ],
    *[
        (f"stage-policy-{label}", "chat_set_v11_stage_policy",
         "select * from public.chat_set_v11_stage_policy('canary_5', %s::jsonb)", (value,), "RO044")
        for label, value in [
            ("null", None),
            ("json-null", "null"),
            ("empty", "{}"),
            ("array", "[]"),
            ("unknown-key", '{"auto_promote": true, "approval_ttl": "1 hour"}'),
            ("injection-key", json.dumps({INJECTIONS[0]: 1})),
            ("auto-promote-string", '{"auto_promote": "yes"}'),
            ("auto-promote-null", '{"auto_promote": null}'),
            ("approvals-negative", '{"approvals_required": -1}'),
            ("approvals-eleven", '{"approvals_required": 11}'),
            ("approvals-fraction", '{"approvals_required": 1.5}'),
            ("approvals-huge", '{"approvals_required": 1e300}'),
            ("approvals-string", '{"approvals_required": "2"}'),
            ("1mb", json.dumps({"auto_promote": MB})),
        ]
    ],
    # --- chat_approve_v11_promotion(p_stage, p_reason): at off only canary_1 can be approved (an accepted approval
    # writes one: the accepted ones are in pytest_tests/progression/)
    *[
        (f"approve-stage-{i}", "chat_approve_v11_promotion",
         "select * from public.chat_approve_v11_promotion(%s, 'ok')", (stage,), "RO042")
        for i, stage in enumerate([None, "", "off", "canary_5", "full", "canary_2", MB, *INJECTIONS])
    ],
    *[
        (f"approve-reason-{label}", "chat_approve_v11_promotion",
         "select * from public.chat_approve_v11_promotion('canary_1', %s)", (reason,), "RO001")
        for label, reason in [("null", None), ("empty", ""), ("blank", " \u200b "), ("1mb", MB)]
    ],
    ("approvals", "chat_get_v11_approvals", "select * from public.chat_get_v11_approvals()", None, OK),
    ("progression", "chat_get_v11_progression", "select * from public.chat_get_v11_progression()", None, OK),
    ("progression-run-nothing-to-do", "chat_run_v11_progression", "select * from public.chat_run_v11_progression()",
     None, OK),
    # --- chat_set_v11_metric_rule(p_metric, p_settings)
    *[
        (f"rule-metric-{i}", "chat_set_v11_metric_rule",
         "select * from public.chat_set_v11_metric_rule(%s, '{\"factor\": 2}')", (metric,), "RO021")
        for i, metric in enumerate([None, "", "Full_State_Rate", MB, *INJECTIONS])
    ],
    *[
        (f"rule-settings-{label}", "chat_set_v11_metric_rule",
         "select * from public.chat_set_v11_metric_rule('full_state_rate', %s::jsonb)", (value,), "RO016", *marks)
        for label, value, *marks in [
            ("null", None),
            ("array", "[]"),
            ("string", '"factor"'),
            ("unknown-key", '{"factr": 2}'),
            ("injection-key", json.dumps({INJECTIONS[0]: 1})),
            ("factor-string", '{"factor": "2"}'),
            ("factor-negative", '{"factor": -1}'),
            ("alpha-above-1", '{"alpha": 2}'),
            ("alpha-zero", '{"alpha": 0}'),
            ("window-garbage", '{"window": "forever"}'),
            ("window-number", '{"window": 900}'),
            ("window-negative", '{"window": "-15 minutes"}'),
            ("freshness-huge", '{"freshness": "1000000000 years"}'),
            ("min-volume-bool", '{"min_volume": true}'),
            ("threshold-nested", '{"threshold": {"value": 0.01}}'),
            ("static-baseline-negative", '{"static_baseline": -0.5}'),
        ]
    ],
    # --- chat_set_v11_metric_source(p_metric, p_cohort, p_source)
    *[
        (f"source-metric-{i}", "chat_set_v11_metric_source",
         "select * from public.chat_set_v11_metric_source(%s, 'canary', '{\"value\": \"x\"}')", (metric,), "RO021")
        for i, metric in enumerate([None, "", "Full_State_Rate", MB, *INJECTIONS])
    ],
    *[
        (f"source-cohort-{i}", "chat_set_v11_metric_source",
         "select * from public.chat_set_v11_metric_source('recovery_p95_ms', %s, '{\"value\": \"x\"}')", (cohort,),
         "RO016")
        for i, cohort in enumerate([None, "", "Canary", MB, *INJECTIONS])
    ],
    *[
        (f"source-{label}", "chat_set_v11_metric_source",
         "select * from public.chat_set_v11_metric_source(%s, 'canary', %s::jsonb)", (metric, value), "RO016")
        for label, metric, value in [
            ("array", "full_state_rate", "[]"),
            ("string", "full_state_rate", '"sum(x)"'),
            ("empty", "full_state_rate", "{}"),
            ("unknown-key", "full_state_rate", '{"numerator": "a", "denominator": "b", "numer": "c"}'),
            ("injection-key", "full_state_rate", json.dumps({INJECTIONS[0]: "a"})),
            ("rate-without-denominator", "full_state_rate", '{"numerator": "a"}'),
            ("rate-with-value", "full_state_rate", '{"numerator": "a", "denominator": "b", "value": "c"}'),
            ("count-without-numerator", "pending_forever_count", '{"denominator": "a"}'),
            ("latency-with-numerator", "recovery_p95_ms", '{"numerator": "a"}'),
            ("expression-number", "recovery_p95_ms", '{"value": 1}'),
            ("expression-blank", "recovery_p95_ms", '{"value": " \u200b "}'),
            ("expression-null", "recovery_p95_ms", '{"value": null}'),
            ("expression-1mb", "recovery_p95_ms", json.dumps({"value": MB})),
        ]
    ],
    ("source-remove-absent", "chat_set_v11_metric_source",
     "select * from public.chat_set_v11_metric_source('full_state_rate', 'control', null)", None, OK),
    # --- chat_put_v11_metric_pulls(p_pulls jsonb)
    *[
        (f"pulls-{label}", "chat_put_v11_metric_pulls", "select public.chat_put_v11_metric_pulls(%s::jsonb)",
         (value,), code)
        for label, value, code in [
            ("null", None, "RO020"),
            ("object", "{}", "RO020"),
            ("not-object", "[1]", "RO022"),
            ("unknown-metric", pulls(metric="chat_bogus_rate"), "RO021"),
            ("metric-injection", pulls(metric=INJECTIONS[0]), "RO021"),
            ("unknown-key", pulls(extra=1), "RO022"),
            ("cohort", pulls(cohort=INJECTIONS[1]), "RO022"),
            ("field", pulls(field="ratio"), "RO022"),
            ("outcome", pulls(outcome="pass"), "RO022"),
            ("value-without-outcome-value", pulls(outcome="empty"), "RO022"),
            ("value-missing", pulls(value=None), "RO022"),
            ("value-string", pulls(value="NaN"), "RO022"),
            ("sha256-short", pulls(answer_sha256="abc"), "RO022"),
            ("query-blank", pulls(query=" "), "RO022"),
            ("query-1mb", pulls(query=MB), "RO022"),
            ("excerpt-1mb", pulls(answer_excerpt=MB), "RO022"),
            ("bucket-garbage", pulls(bucket_start="yesterday"), "RO022"),
            ("bucket-impossible", pulls(bucket_start="2026-13-45T00:00:00Z"), "RO022"),
            ("misaligned", pulls(bucket_start="2026-01-01T00:00:05Z"), "RO023"),
            ("duplicate", "[" + pull() + "," + pull() + "]", "RO025"),
            ("empty", "[]", OK),
        ]
    ],
    # --- chat_put_v11_active_alerts(p_alerts jsonb, p_error text) / chat_get_v11_active_alerts(); an accepted call
    # replaces the record, so only refusals here (the accepted ones: pytest_tests/production/test_alerts_gate.py)
    *[
        (f"alerts-{label}", "chat_put_v11_active_alerts", "select public.chat_put_v11_active_alerts(%s::jsonb, %s)",
         (value, error), code)
        for label, value, error, code in [
            ("null", None, None, "RO020"),
            ("object", "{}", None, "RO020"),
            ("string", '"[]"', None, "RO020"),
            ("too-many", json.dumps([json.loads(alert())[0]] * 201), None, "RO020"),
            ("not-object", "[1]", None, "RO022"),
            ("unknown-key", json.dumps([{**json.loads(alert())[0], "extra": 1}]), None, "RO022"),
            ("missing-key", json.dumps([{k: v for k, v in json.loads(alert())[0].items() if k != "silenced"}]),
             None, "RO022"),
            ("alertname-blank", alert(alertname=" \u200b "), None, "RO022"),
            ("alertname-number", alert(alertname=7), None, "RO022"),
            ("alertname-1mb", alert(alertname=MB), None, "RO022"),
            ("severity-p2", alert(severity="P2"), None, "RO022"),
            ("severity-lowercase", alert(severity="p1"), None, "RO022"),
            ("severity-injection", alert(severity=INJECTIONS[1]), None, "RO022"),
            ("starts-garbage", alert(startsAt="yesterday"), None, "RO022"),
            ("starts-impossible", alert(startsAt="2026-13-45T00:00:00Z"), None, "RO022"),
            ("starts-no-offset", alert(startsAt="2026-01-01T00:00:00"), None, "RO022"),
            ("fingerprint-blank", alert(fingerprint=""), None, "RO022"),
            ("fingerprint-1mb", alert(fingerprint=MB), None, "RO022"),
            ("silenced-string", alert(silenced="false"), None, "RO022"),
            ("error-blank", None, " ", "RO022"),
            ("error-1mb", None, MB, "RO022"),
            ("error-with-alerts", alert(), "connection refused", "RO022"),
        ]
    ],
    ("active-alerts", "chat_get_v11_active_alerts", "select * from public.chat_get_v11_active_alerts()", None, OK),
    # --- chat_get_v11_assignment(p_user_key text) / chat_get_v11_assignment_policy()
    *[
        (f"assignment-{label}", "chat_get_v11_assignment", "select * from public.chat_get_v11_assignment(%s)",
         (value,), expected)
        for label, value, expected in [
            ("null", None, "RO011"),
            ("empty", "", OK),
            ("1mb", MB, OK),
            ("injection", INJECTIONS[0], OK),
        ]
    ],
    ("assignment-policy", "chat_get_v11_assignment_policy", "select * from public.chat_get_v11_assignment_policy()",
     None, OK),
    # --- chat_put_v11_metric_samples(p_samples jsonb)
    *[
        (f"samples-json-{label}", "chat_put_v11_metric_samples",
         "select public.chat_put_v11_metric_samples(%s::jsonb)", (value,), code, *marks)
        for label, value, code, *marks in [
            ("null", None, "RO020"),
            ("object", "{}", "RO020"),
            ("string", '"[]"', "RO020"),
            ("not-object", "[1]", "RO022"),
            ("unknown-metric", sample(metric="chat_bogus_rate"), "RO021"),
            ("metric-injection", sample(metric=INJECTIONS[0]), "RO021"),
            ("metric-1mb", sample(metric=MB), "RO021"),
            ("metric-null", sample(metric=None), "RO022"),
            ("metric-number", sample(metric=7), "RO022"),
            ("unknown-cohort", sample(cohort="beta"), "RO022"),
            ("cohort-injection", sample(cohort=INJECTIONS[1]), "RO022"),
            ("unknown-key", json.dumps([{**json.loads(sample())[0], "extra": 1}]), "RO022"),
            ("missing-bucket", sample(bucket_start=_DROP), "RO022"),
            ("numerator-string", sample(numerator="0"), "RO022"),
            ("numerator-nan", sample(numerator="NaN"), "RO022"),
            ("numerator-negative", sample(numerator=-1), "RO022"),
            ("numerator-fraction", sample(numerator=0.5), "RO022"),
            ("numerator-huge", sample(numerator=10**30, denominator=10**30), "RO022"),
            ("numerator-above-denominator", sample(numerator=11), "RO022"),
            ("value-infinity", sample(metric="recovery_p95_ms", numerator=_DROP, denominator=_DROP,
                                      value="Infinity"), "RO022"),
            ("value-huge", json.dumps([{"metric": "recovery_p95_ms", "cohort": "canary", "bucket_start": ALIGNED,
                                        "value": 1}]).replace('"value": 1', '"value": 1e400'), "RO022"),
            ("value-negative", sample(metric="recovery_p95_ms", numerator=_DROP, denominator=_DROP, value=-5),
             "RO022"),
            ("bucket-garbage", sample(bucket_start="yesterday"), "RO022"),
            ("bucket-no-offset", sample(bucket_start="2026-01-01T00:00:00"), "RO022"),
            ("bucket-infinity", sample(bucket_start="infinity"), "RO022"),
            ("bucket-year-10000", sample(bucket_start="10000-01-01T00:00:00Z"), "RO022"),
            ("bucket-injection", sample(bucket_start=INJECTIONS[0]), "RO022"),
            ("bucket-misaligned", sample(bucket_start="2026-01-01T00:00:05Z"), "RO023"),
            ("bucket-microseconds", sample(bucket_start="2026-01-01T00:00:00.000001Z"), "RO023"),
            ("bucket-far-future", sample(bucket_start="2999-01-01T00:00:00Z"), "RO024"),
            ("duplicate", json.dumps(json.loads(sample()) * 2), "RO025"),
        ]
    ],
    ("samples-json-future-aligned", "chat_put_v11_metric_samples", FUTURE_ALIGNED, None, "RO024"),
    # --- chat_put_v11_metric_samples(text[], text[], timestamptz[], bigint[], bigint[], float8[])
    *[
        (f"samples-columnar-{label}", "chat_put_v11_metric_samples", COLUMNAR, params, code, *marks)
        for label, params, code, *marks in [
            ("lengths-differ", columnar(cohorts=["canary", "control"]), "RO020"),
            ("metrics-null", columnar(metrics=None), "RO020"),
            ("unknown-metric", columnar(metrics=["chat_bogus_rate"]), "RO021"),
            ("metric-injection", columnar(metrics=[INJECTIONS[0]]), "RO021"),
            ("metric-1mb", columnar(metrics=[MB]), "RO021"),
            ("metric-null-element", columnar(metrics=[None]), "RO021"),
            ("cohort-injection", columnar(cohorts=[INJECTIONS[1]]), "RO022"),
            ("start-null", columnar(starts=[None]), "RO022"),
            ("start-infinity", columnar(starts=["infinity"]), "RO022"),
            ("numerator-negative", columnar(numerators=[-1]), "RO022"),
            ("numerator-above-denominator", columnar(numerators=[11]), "RO022"),
            ("value-nan", columnar(metrics=["recovery_p95_ms"], numerators=[None], denominators=[None],
                                   values=[math.nan]), "RO022"),
            ("value-infinity", columnar(metrics=["recovery_p95_ms"], numerators=[None], denominators=[None],
                                        values=[math.inf]), "RO022"),
            ("value-minus-infinity", columnar(metrics=["recovery_p95_ms"], numerators=[None], denominators=[None],
                                              values=[-math.inf]), "RO022"),
            ("misaligned", columnar(starts=["2026-01-01T00:00:09.5Z"]), "RO023"),
            ("far-future", columnar(starts=["2999-01-01T00:00:00Z"]), "RO024"),
            ("duplicate", columnar(metrics=["full_state_rate"] * 2, cohorts=["canary"] * 2, starts=[ALIGNED] * 2,
                                   numerators=[0, 0], denominators=[10, 10], values=[None, None]), "RO025"),
        ]
    ],
    # --- chat_open_v11_incident(p_severity, p_summary)
    *[
        (f"open-severity-{i}", "chat_open_v11_incident", "select * from public.chat_open_v11_incident(%s, 'x')",
         (severity,), "RO031")
        for i, severity in enumerate([None, "", "p0", "P3", MB, *INJECTIONS])
    ],
    *[
        (f"open-summary-{label}", "chat_open_v11_incident", "select * from public.chat_open_v11_incident('P2', %s)",
         (summary,), "RO001")
        for label, summary in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    # --- incident functions taking an id: unknown, null, negative, max bigint
    *[
        (f"{short}-id-{label}", fn, call, (incident_id,), code)
        for fn, short, call, code in [
            ("chat_log_v11_incident", "log", "select * from public.chat_log_v11_incident(%s, 'fact', 'x')", "RO030"),
            ("chat_set_v11_incident_role", "role",
             "select * from public.chat_set_v11_incident_role(%s, 'IC', 'alice')", "RO030"),
            ("chat_set_v11_incident_severity", "severity",
             "select * from public.chat_set_v11_incident_severity(%s, 'P1', 'worse')", "RO030"),
            ("chat_set_v11_incident_status", "status",
             "select * from public.chat_set_v11_incident_status(%s, 'mitigated', 'x')", "RO030"),
            ("chat_snapshot_v11_incident", "snapshot", "select * from public.chat_snapshot_v11_incident(%s)",
             "RO030"),
            ("chat_put_v11_postmortem", "postmortem", "select * from public.chat_put_v11_postmortem(%s, '{}')",
             "RO030"),
            ("chat_get_v11_incident_checklist", "checklist",
             "select * from public.chat_get_v11_incident_checklist(%s)", "RO030"),
            ("chat_get_v11_incident_timeline", "timeline",
             "select * from public.chat_get_v11_incident_timeline(%s)", "RO030"),
            ("chat_get_v11_postmortem", "get-postmortem", "select public.chat_get_v11_postmortem(%s)", "RO030"),
            ("chat_close_v11_incident", "close", "select * from public.chat_close_v11_incident(%s, 'done')",
             "RO030"),
        ]
        for label, incident_id in [("null", None), ("unknown", 999), ("negative", -1),
                                   ("max-bigint", 9223372036854775807)]
    ],
    # --- chat_log_v11_incident(p_incident_id, p_kind, p_text)
    *[
        (f"log-kind-{i}", "chat_log_v11_incident", "select * from public.chat_log_v11_incident(1, %s, 'x')",
         (kind,), "RO031")
        for i, kind in enumerate([None, "", "FACT", MB, *INJECTIONS])
    ],
    *[
        (f"log-text-{label}", "chat_log_v11_incident", "select * from public.chat_log_v11_incident(1, 'fact', %s)",
         (text,), "RO001")
        for label, text in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    ("log-root-cause-no-layer", "chat_log_v11_incident",
     "select * from public.chat_log_v11_incident(1, 'root_cause', %s)", (INJECTIONS[0],), "RO031"),
    # --- chat_set_v11_incident_role(p_incident_id, p_role, p_person)
    *[
        (f"role-role-{i}", "chat_set_v11_incident_role",
         "select * from public.chat_set_v11_incident_role(1, %s, 'alice')", (role,), "RO031")
        for i, role in enumerate([None, "", "CEO", MB, *INJECTIONS])
    ],
    *[
        (f"role-person-{label}", "chat_set_v11_incident_role",
         "select * from public.chat_set_v11_incident_role(1, 'IC', %s)", (person,), "RO001", *marks)
        for label, person, *marks in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    # --- chat_set_v11_incident_severity(p_incident_id, p_severity, p_reason)
    *[
        (f"severity-severity-{i}", "chat_set_v11_incident_severity",
         "select * from public.chat_set_v11_incident_severity(1, %s, 'x')", (severity,), "RO031")
        for i, severity in enumerate([None, "", "P4", MB, *INJECTIONS])
    ],
    *[
        (f"severity-reason-{label}", "chat_set_v11_incident_severity",
         "select * from public.chat_set_v11_incident_severity(1, 'P1', %s)", (reason,), "RO001")
        for label, reason in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    # --- chat_set_v11_incident_status(p_incident_id, p_status, p_reason)
    *[
        (f"status-status-{i}", "chat_set_v11_incident_status",
         "select * from public.chat_set_v11_incident_status(1, %s, 'x')", (status,), "RO032")
        for i, status in enumerate([None, "", "closed", "Mitigated", MB, *INJECTIONS])
    ],
    *[
        (f"status-reason-{label}", "chat_set_v11_incident_status",
         "select * from public.chat_set_v11_incident_status(1, 'mitigated', %s)", (reason,), "RO001")
        for label, reason in [("null", None), ("empty", ""), ("1mb", MB)]
    ],
    # --- chat_put_v11_postmortem(p_incident_id, p_postmortem)
    *[
        (f"postmortem-{label}", "chat_put_v11_postmortem",
         "select * from public.chat_put_v11_postmortem(1, %s::jsonb)", (value,), "RO035", *marks)
        for label, value, *marks in [
            ("null", None),
            ("array", "[]"),
            ("string", json.dumps(INJECTIONS[0])),
            ("number", "1e400"),
            ("action-items-string", '{"action_items": "none"}'),
            ("action-item-no-owner", '{"action_items": [{"kind": "test", "what": "x", "deadline": "2026-12-01"}]}'),
            ("action-item-bad-deadline", '{"action_items": [{"kind": "test", "what": "x", "owner": "a", '
                                         '"deadline": "someday"}]}'),
        ]
    ],
    # --- chat_close_v11_incident(p_incident_id, p_reason)
    *[
        (f"close-reason-{label}", "chat_close_v11_incident",
         "select * from public.chat_close_v11_incident(1, %s)", (reason,), code)
        for label, reason, code in [("null", None, "RO001"), ("empty", "", "RO001"), ("1mb", MB, "RO001"),
                                    ("not-resolved", INJECTIONS[0], "RO032")]
    ],
]


def api_functions(conn) -> set[str]:
    rows = conn.execute(
        "select distinct p.proname from pg_proc p "
        "where p.pronamespace = 'public'::regnamespace and p.proname ~ '^chat_[a-z]+_v11_'"
    ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def prepared(conn):
    """An open P2 incident (id 1) and a hostile claimed actor; returns the connection."""
    opened = conn.execute("select incident_id from public.chat_open_v11_incident('P2', 'bad input target')")
    assert opened.fetchone()[0] == 1
    conn.execute("select set_config('chat.actor', %s, false)", (INJECTIONS[0],))
    return conn


def _params(case):
    case_id, function, statement, params, expected, *marks = case
    return pytest.param(function, statement, params, expected, id=case_id, marks=marks)


@pytest.mark.parametrize("function,statement,params,expected", [_params(c) for c in CASES])
def test_bad_input_is_refused_with_a_project_sqlstate_and_changes_nothing(prepared, function, statement, params,
                                                                          expected):
    conn = prepared
    before = fingerprint(conn)
    assert function in statement
    if expected == OK:
        # counted, not fetched: psycopg cannot load a timestamptz of +-infinity into a datetime
        conn.execute(f"select count(*) from ({statement}) as accepted", params).fetchone()
    else:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(statement, params)
        diag = info.value.diag
        assert (diag.sqlstate, function) == (expected, function), diag.message_primary
        hint = diag.message_hint
        assert hint and hint.strip(), f"{diag.sqlstate} without a HINT: {diag.message_primary}"
    assert fingerprint(conn) == before
    tables = set(chat_tables(conn))
    assert {"rollout_history", "incident", "rollout_state"} <= tables


def _is_huge(value) -> bool:
    if isinstance(value, str):
        return len(value) >= len(MB)
    if isinstance(value, (list, tuple)):
        return any(_is_huge(v) for v in value)
    return False


HUGE = [c for c in CASES if c[4] != OK and _is_huge(c[3])]


@pytest.mark.parametrize(
    "statement,params",
    [
        pytest.param(
            c[2], c[3], id=c[0],
        )
        for c in HUGE
    ],
)
def test_refusals_do_not_echo_a_huge_argument(prepared, statement, params):
    with pytest.raises(psycopg.Error) as info:
        prepared.execute(statement, params)
    diag = info.value.diag
    for field in (diag.message_primary, diag.message_detail, diag.message_hint):
        assert len(field or "") < 10_000, (diag.sqlstate, (field or "")[:200])


@pytest.mark.parametrize("moment", ["infinity", "-infinity", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"])
def test_gates_at_extreme_moments_are_read_only_and_never_proceed(conn, moment):
    gates = conn.execute(
        "select gate_p0_ok, rollout_decision, promotion_allowed from public.chat_get_v11_release_gates(%s)", (moment,)
    ).fetchone()
    assert gates == (False, "HOLD", False)
    statuses = conn.execute("select distinct status from public.chat_get_v11_gate_checks(%s)", (moment,)).fetchall()
    assert {s for (s,) in statuses} <= {"inconclusive", "not_applicable"}


def test_every_api_function_has_bad_input_cases(conn):
    covered = {case[1] for case in CASES}
    assert api_functions(conn) <= covered, api_functions(conn) - covered
    assert covered <= api_functions(conn), covered - api_functions(conn)


# --- free text is stored verbatim: nothing executed, nothing trimmed inside, nothing escaped

VERBATIM = [*INJECTIONS, "Robert'); DROP TABLE Students;--", "\\x00 \\ % _ $1 :name {} 🚦 ẞ", "a\u200bb"]


@pytest.mark.parametrize("text", VERBATIM, ids=[f"text-{i}" for i in range(len(VERBATIM))])
def test_free_text_is_stored_verbatim_and_nothing_is_executed(conn, text):
    tables = chat_tables(conn)
    row = conn.execute("select reason from public.chat_set_v11_rollout_state('off', false, %s)", (text,)).fetchone()
    assert row[0] == text
    assert conn.execute("select reason from public.chat_get_v11_rollout_history(1)").fetchone()[0] == text
    incident = conn.execute("select incident_id, summary from public.chat_open_v11_incident('P2', %s)",
                            (text,)).fetchone()
    assert incident[1] == text
    entry = conn.execute("select body from public.chat_log_v11_incident(%s, 'fact', %s)", (incident[0], text))
    assert entry.fetchone()[0] == text
    role = conn.execute("select person from public.chat_set_v11_incident_role(%s, 'IC', %s)", (incident[0], text))
    assert role.fetchone()[0] == text
    listed = conn.execute("select summary from public.chat_get_v11_incidents() where incident_id = %s",
                          (incident[0],)).fetchone()
    assert listed[0] == text
    stored = conn.execute("select body from chat_v11.incident_entry where incident_id = %s and kind = 'fact'",
                          (incident[0],)).fetchone()
    assert stored[0] == text
    assert chat_tables(conn) == tables
    assert conn.execute("select ok from public.chat_verify_v11_history()").fetchone()[0] is True


def test_a_claimed_actor_is_stored_verbatim_beside_session_user(conn):
    conn.execute("select set_config('chat.actor', %s, false)", (INJECTIONS[0],))
    row = conn.execute("select changed_by, actor from public.chat_set_v11_rollout_state('off', false, 'hold')")
    assert row.fetchone() == (conn.execute("select session_user").fetchone()[0], INJECTIONS[0])


def test_a_kill_with_a_huge_unknown_stage_is_applied_with_a_short_note(conn):
    row = conn.execute("select kill_switch, note from public.chat_set_v11_rollout_state(%s, true, 'kill')",
                       (MB,)).fetchone()
    assert row[0] is True  # the kill itself is never refused
    stored = conn.execute("select length(note) from chat_v11.rollout_history order by version desc limit 1")
    assert stored.fetchone()[0] < 1000
