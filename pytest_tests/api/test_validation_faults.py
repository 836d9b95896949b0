"""Issue 13, input validation: each known fault is refused with the right project SQLSTATE, names the right sample and
field, quotes caller text at most 100 characters, and writes nothing (every chat_v11 table unchanged).

Table-driven: (id, SQL, params, expected SQLSTATE, texts that must appear in MESSAGE or DETAIL, session settings).
The README's error-code table says what each SQLSTATE means (RO001 reasons, RO020-RO025 samples, RO031 a root cause
without its cause, RO035 postmortems and their limits).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from pytest_tests.support.databases import fingerprint

MB = 1024 * 1024
ALIGNED = "2026-01-01T00:00:00Z"
JSON_PUT = "select public.chat_put_v11_metric_samples(%s::jsonb)"
COLUMNAR = (
    "select public.chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], "
    "%s::bigint[], %s::float8[])"
)
POSTMORTEM_PUT = "select * from public.chat_put_v11_postmortem(1, %s::jsonb)"
AMSTERDAM = "set timezone = 'Europe/Amsterdam'"


def rate(**fields) -> dict:
    return {"metric": "full_state_rate", "cohort": "canary", "bucket_start": ALIGNED, "numerator": 0,
            "denominator": 10, **fields}


def batch(*samples: dict) -> str:
    return json.dumps(list(samples))


def raw_batch(*texts: str) -> str:
    """A JSON array of sample objects written by hand, for numbers json.dumps would not write (1.0 stays 1.0)."""
    return "[" + ", ".join(texts) + "]"


@dataclass(frozen=True)
class Postmortem:
    """The example postmortem (fixture postmortem_example) with one change, written as JSON when the test runs."""

    change: Callable[[dict], None]

    def render(self, example: dict) -> str:
        document = copy.deepcopy(example)
        self.change(document)
        return json.dumps(document)


def postmortem(change) -> Postmortem:
    return Postmortem(change)


def written(params, example: dict):
    """The call's parameters with every Postmortem written from the example."""
    if params is None:
        return None
    return type(params)(p.render(example) if isinstance(p, Postmortem) else p for p in params)


def action_item(**fields):
    def change(document):
        document["action_items"][0].update(fields)
    return change


def setting(key, value):
    def change(document):
        document[key] = value
    return change


def root_cause(**fields):
    def change(document):
        document["root_cause"].update(fields)
    return change


def many_action_items(n: int):
    def change(document):
        document["action_items"] = [
            {"kind": ("test", "alert", "guardrail")[i % 3], "title": f"item {i}", "owner": "alice",
             "deadline": "2026-12-10"}
            for i in range(n)
        ]
    return change


GOOD = '{"metric": "full_state_rate", "cohort": "canary", "bucket_start": "2026-01-01T00:00:10Z", ' \
    '"numerator": 0, "denominator": 10}'
LATENCY = '{"metric": "recovery_p95_ms", "cohort": "canary", "bucket_start": "2026-01-01T00:00:00Z", '
INVISIBLE = {"zwj": "\u200d", "soft-hyphen": "\u00ad", "word-joiner": "\u2060", "control-01": "\x01",
             "mixed": " \u200d\u00ad\u2060\x01\u200b\ufeff\u3000 "}

# (id, statement, params, SQLSTATE, texts in MESSAGE or DETAIL, session setting run first or None)
FAULTS = [
    # --- samples, JSON path
    ("sample-unknown-key-1mb", JSON_PUT, (batch(rate(**{"k" * MB: 1})),), "RO022",
     ["sample 1 of 1", "unknown key 'kkkk", f"({MB} characters)"], None),
    ("sample-numerator-1.0", JSON_PUT, (raw_batch(GOOD, GOOD.replace('"numerator": 0', '"numerator": 1.0')
                                                  .replace(":10Z", ":20Z")),), "RO022",
     ["sample 2 of 2", "numerator '1.0'", "1, not 1.0"], None),
    ("sample-denominator-10.0", JSON_PUT, (raw_batch(GOOD.replace('"denominator": 10', '"denominator": 10.0')),),
     "RO022", ["sample 1 of 1", "denominator '10.0'"], None),
    ("sample-value-1e-400", JSON_PUT, (raw_batch(GOOD, LATENCY + '"value": 1e-400}'),), "RO022",
     ["sample 2 of 2", "value '0.0000", "double precision"], None),
    ("sample-count-numerator-above-denominator", JSON_PUT,
     (batch(rate(), {"metric": "pending_forever_count", "cohort": "canary", "bucket_start": ALIGNED,
                     "numerator": 5, "denominator": 3}),), "RO022",
     ["sample 2 of 2", "numerator 5 is greater than denominator 3"], None),
    ("sample-latency-numerator-above-denominator", JSON_PUT,
     (batch({"metric": "recovery_p95_ms", "cohort": "canary", "bucket_start": ALIGNED, "value": 10,
             "numerator": 5, "denominator": 3}),), "RO022",
     ["sample 1 of 1", "numerator 5 is greater than denominator 3"], None),
    ("sample-misaligned-in-utc-amsterdam", JSON_PUT, (batch(rate(bucket_start="1930-01-01T00:00:08Z")),), "RO023",
     ["sample 1 of 1", "bucket_start is not aligned to 10 seconds"], AMSTERDAM),
    ("sample-bad-date-names-its-sample", JSON_PUT,
     (batch(rate(), rate(bucket_start="2026-02-30T00:00:00Z")),), "RO022",
     ["sample 2 of 2", "bucket_start '2026-02-30T00:00:00Z' is not a valid timestamp"], None),
    # --- samples, columnar path
    ("columnar-count-numerator-above-denominator", COLUMNAR,
     (["full_state_rate", "pending_forever_count"], ["canary", "canary"], [ALIGNED, ALIGNED], [0, 5], [10, 3],
      None), "RO022", ["sample 2 of 2", "numerator 5 is greater than denominator 3"], None),
    ("columnar-latency-numerator-above-denominator", COLUMNAR,
     (["recovery_p95_ms"], ["canary"], [ALIGNED], [5], [3], [10.0]), "RO022",
     ["sample 1 of 1", "numerator 5 is greater than denominator 3"], None),
    ("columnar-misaligned-in-utc-amsterdam", COLUMNAR,
     (["full_state_rate"], ["canary"], ["1930-01-01T00:00:08Z"], [0], [10], None), "RO023",
     ["sample 1 of 1", "bucket_start is not aligned to 10 seconds"], AMSTERDAM),
    ("columnar-cohort-2d", "select public.chat_put_v11_metric_samples(array['full_state_rate'], "
     "array[array['canary']], array[timestamptz '2026-01-01T00:00:00Z'], array[0::bigint], array[10::bigint], "
     "null::float8[])", None, "RO020", ["one-dimensional", "dimensions 1, 2, 1"], None),
    # --- postmortem content (incident 1)
    ("postmortem-deadline-9999-99-99", POSTMORTEM_PUT, (postmortem(action_item(deadline="9999-99-99")),), "RO035",
     ["action item 1: deadline '9999-99-99' is not a calendar date"], None),
    ("postmortem-deadline-feb-30", POSTMORTEM_PUT, (postmortem(action_item(deadline="2026-02-30")),), "RO035",
     ["action item 1: deadline '2026-02-30' is not a calendar date"], None),
    ("postmortem-owner-object", POSTMORTEM_PUT, (postmortem(action_item(owner={})),), "RO035",
     ["action item 1: owner must be a text", "got a JSON object"], None),
    ("postmortem-owner-zero", POSTMORTEM_PUT, (postmortem(action_item(owner=0)),), "RO035",
     ["action item 1: owner must be a text", "got a JSON number"], None),
    ("postmortem-owner-invisible", POSTMORTEM_PUT, (postmortem(action_item(owner="\u200d")),), "RO035",
     ["action item 1: owner is missing"], None),
    ("postmortem-title-number", POSTMORTEM_PUT, (postmortem(action_item(title=7)),), "RO035",
     ["action item 1: title must be a text"], None),
    ("postmortem-timeline-blank-entry", POSTMORTEM_PUT, (postmortem(setting("timeline", ["   "])),), "RO035",
     ["timeline entry 1 is blank"], None),
    ("postmortem-timeline-null-entry", POSTMORTEM_PUT, (postmortem(setting("timeline", ["ok", None])),), "RO035",
     ["timeline entry 2 must be a text or an object, got a JSON null"], None),
    ("postmortem-timeline-empty-object", POSTMORTEM_PUT, (postmortem(setting("timeline", [{}])),), "RO035",
     ["timeline entry 1 is an empty object"], None),
    ("postmortem-what-worked-object", POSTMORTEM_PUT, (postmortem(setting("what_worked", {})),), "RO035",
     ["what_worked must be a text or an array, got a JSON object"], None),
    ("postmortem-what-did-not-work-invisible", POSTMORTEM_PUT,
     (postmortem(setting("what_did_not_work", "\u2060\u00ad")),), "RO035", ["what_did_not_work is missing"], None),
    ("postmortem-decision-log-null-entry", POSTMORTEM_PUT, (postmortem(setting("decision_log", [None])),), "RO035",
     ["decision_log entry 1"], None),
    ("postmortem-root-cause-invisible", POSTMORTEM_PUT, (postmortem(root_cause(technical="\u200d\u200b")),), "RO035",
     ["root_cause.technical is missing"], None),
    ("postmortem-root-cause-object", POSTMORTEM_PUT, (postmortem(root_cause(process={"a": 1})),), "RO035",
     ["root_cause.process must be a text"], None),
    ("postmortem-10mb", POSTMORTEM_PUT, (postmortem(setting("decision_log", ["x" * (10 * MB)])),), "RO035",
     ["at most 262144 (256 KiB)"], None),
    ("postmortem-102000-action-items", POSTMORTEM_PUT, (postmortem(many_action_items(102_000)),), "RO035",
     ["at most 262144 (256 KiB)"], None),
    ("postmortem-201-action-items", POSTMORTEM_PUT, (postmortem(many_action_items(201)),), "RO035",
     ["action_items has 201 items, at most 200"], None),
    ("postmortem-201-timeline-entries", POSTMORTEM_PUT,
     (postmortem(setting("timeline", [f"19:{i:02d} UTC" for i in range(201)])),), "RO035",
     ["timeline has 201 entries, at most 200"], None),
    ("postmortem-unknown-key-1mb", POSTMORTEM_PUT, (postmortem(setting("k" * (MB // 8), 1)),), "RO035",
     ["unknown key 'kkk", "characters)"], None),
    # --- a root cause without its cause
    *[
        (f"root-cause-without-cause-{label}", "select * from public.chat_log_v11_incident(1, 'root_cause', %s)",
         (text,), "RO031", ["names its cause after the layer"], None)
        for label, text in [("colon", "backend:"), ("blank", "backend:   "), ("invisible", "sre: \u200d\u2060")]
    ],
    # --- reasons made only of invisible or control characters
    *[
        (f"reason-{label}", "select * from public.chat_set_v11_rollout_state('off', true, %s)", (text,), "RO001",
         ["none visible"], None)
        for label, text in INVISIBLE.items()
    ],
    ("log-text-zwj", "select * from public.chat_log_v11_incident(1, 'fact', %s)", ("\u200d",), "RO001",
     ["none visible"], None),
    ("summary-control", "select * from public.chat_open_v11_incident('P1', %s)", ("\x01\x02",), "RO001",
     ["none visible"], None),
    ("role-person-soft-hyphen", "select * from public.chat_set_v11_incident_role(1, 'IC', %s)", ("\u00ad",),
     "RO001", ["none visible"], None),
]


@pytest.fixture
def incident(conn):
    """An open P2 incident (id 1); returns the connection."""
    assert conn.execute("select incident_id from public.chat_open_v11_incident('P2', 'target')").fetchone()[0] == 1
    return conn


@pytest.mark.parametrize(
    "statement,params,expected,needles,session",
    [pytest.param(*case[1:], id=case[0]) for case in FAULTS],
)
def test_each_fault_is_refused_naming_sample_and_field_and_nothing_is_written(incident, statement, params, expected,
                                                                              needles, session, postmortem_example):
    conn = incident
    params = written(params, postmortem_example)
    if session:
        conn.execute(session)
    before = fingerprint(conn)
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement, params)
    diag = info.value.diag
    said = f"{diag.message_primary}\n{diag.message_detail}"
    assert diag.sqlstate == expected, said[:500]
    for needle in needles:
        assert needle in said, (needle, said[:500])
    assert diag.message_detail and diag.message_hint, said[:500]
    for field in (diag.message_primary, diag.message_detail, diag.message_hint):
        assert len(field or "") < 2000, (diag.sqlstate, (field or "")[:200])
    assert "bucket_start is not a valid timestamp" not in said or "bucket_start" in " ".join(needles)
    assert fingerprint(conn) == before


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns"])
def test_bucket_alignment_is_counted_in_utc_whatever_the_timezone(conn, timezone):
    conn.execute(f"set timezone = '{timezone}'")
    stored = conn.execute(JSON_PUT, (batch(rate(bucket_start="1930-01-01T00:00:10Z")),)).fetchone()[0]
    assert stored == 1
    stored = conn.execute(COLUMNAR, (["full_state_rate"], ["control"], ["1930-01-01T00:00:10Z"], [0], [10], None))
    assert stored.fetchone()[0] == 1
    for statement, params in [
        (JSON_PUT, (batch(rate(bucket_start="1930-01-01T00:00:08Z")),)),
        (COLUMNAR, (["full_state_rate"], ["canary"], ["1930-01-01T00:00:08Z"], [0], [10], None)),
    ]:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(statement, params)
        assert info.value.diag.sqlstate == "RO023"
    # the table itself: the constraint does not read the session's TimeZone either
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute("insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator) "
                     "values ('full_state_rate', 'canary', '1930-01-01T00:00:08Z', 0, 10)")
    assert info.value.diag.constraint_name == "metric_sample_bucket_aligned_utc"
    assert conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0] == 2


@pytest.mark.parametrize("reason", ["🚨 откат", "a\u200db", "日本語", "\u00a0ok\u00a0", "-", "🚨"])
def test_real_text_in_any_script_is_still_a_reason(conn, reason):
    row = conn.execute("select reason from public.chat_set_v11_rollout_state('off', false, %s)", (reason,))
    assert row.fetchone()[0] == reason.strip("\u00a0")


def test_a_root_cause_with_layer_and_cause_is_accepted(incident):
    row = incident.execute("select body from public.chat_log_v11_incident(1, 'root_cause', 'backend: 🚨 откат')")
    assert row.fetchone()[0] == "backend: 🚨 откат"


def test_a_postmortem_at_the_limits_is_accepted(incident, postmortem_example):
    def change(document):
        many_action_items(200)(document)
        document["timeline"] = [f"19:{i % 60:02d} UTC step {i}" for i in range(200)]
        document["timeline"][0] = {"at": "19:20 UTC", "what": "spike"}
        document["action_items"][0]["deadline"] = "2028-02-29"
    row = incident.execute(POSTMORTEM_PUT, (postmortem(change).render(postmortem_example),)).fetchone()
    assert row[2] == 200


def test_json_and_columnar_counts_and_values_at_their_bounds_are_accepted(conn):
    stored = conn.execute(JSON_PUT, (raw_batch(
        GOOD.replace('"numerator": 0', '"numerator": 1e1').replace('"denominator": 10', '"denominator": 10'),
        LATENCY + '"value": 1e12}',
        LATENCY.replace("canary", "control") + '"value": 1e-300}',
    ),)).fetchone()[0]
    assert stored == 3
    assert conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0] == 3
