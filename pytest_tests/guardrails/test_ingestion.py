"""SPEC 4.4 / 4.6.2: ingestion all or nothing, every bad sample named with a project SQLSTATE, idempotent."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import history, state
from pytest_tests.support.samples import iso, put, sample

NOW = scenarios.anchor_now


def count(conn) -> int:
    return conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0]


def test_samples_are_written_and_counted(conn):
    t = NOW()
    n = put(
        conn,
        [
            sample("full_state_rate", "canary", t, 3, 1000),
            sample("recovery_p95_ms", "control", t),
            sample("pending_forever_count", "control", t),
        ],
    )
    assert n == 3 and count(conn) == 3


def test_re_sending_a_bucket_replaces_it_never_double_counts(conn):
    t = NOW() - timedelta(minutes=1)
    put(conn, [sample("full_state_rate", "canary", t, 3, 1000)])
    put(conn, [sample("full_state_rate", "canary", t, 5, 2000)])
    rows = conn.execute("select numerator, denominator from chat_v11.metric_sample").fetchall()
    assert rows == [(5, 2000)]


def good(t=None) -> dict:
    return sample("full_state_rate", "canary", t or NOW(), 1, 100)


BAD = [
    ("unknown metric", {"metric": "ack_rate"}, "RO021"),
    ("metric not a string", {"metric": 7}, "RO022"),
    ("unknown cohort", {"cohort": "beta"}, "RO022"),
    ("unknown key", {"extra": 1}, "RO022"),
    ("negative numerator", {"numerator": -1}, "RO022"),
    ("negative denominator", {"denominator": -5, "numerator": 0}, "RO022"),
    ("numerator > denominator", {"numerator": 101}, "RO022"),
    ("NaN as a string", {"numerator": "NaN"}, "RO022"),
    ("Infinity as a string", {"denominator": "Infinity"}, "RO022"),
    ("number as a string", {"numerator": "1"}, "RO022"),
    ("fractional count", {"numerator": 1.5}, "RO022"),
    ("missing denominator for a rate", {"denominator": None}, "RO022"),
    ("bucket not a timestamp", {"bucket_start": "yesterday"}, "RO022"),
    ("bucket without offset", {"bucket_start": "2026-11-26T10:00:00"}, "RO022"),
    ("impossible date", {"bucket_start": "2026-13-45T10:00:00Z"}, "RO022"),
    ("misaligned bucket", {"bucket_start": "2026-11-26T10:00:05Z"}, "RO023"),
    ("misaligned by microseconds", {"bucket_start": "2026-11-26T10:00:10.000001Z"}, "RO023"),
    ("bucket far in the future", {"bucket_start": "future"}, "RO024"),
]


@pytest.mark.parametrize("what,change,sqlstate", BAD, ids=[b[0] for b in BAD])
def test_a_batch_with_one_bad_sample_writes_nothing_and_names_it(conn, what, change, sqlstate):
    t = NOW() - timedelta(minutes=2)
    bad = good(t + timedelta(seconds=10))
    for key, value in change.items():
        if value is None:
            bad.pop(key)
        elif value == "future":
            bad[key] = iso(NOW() + timedelta(minutes=6))
        else:
            bad[key] = value
    batch = [good(t), bad, good(t + timedelta(seconds=20))]
    with pytest.raises(psycopg.Error) as info:
        put(conn, batch)
    err = info.value
    assert err.diag.sqlstate == sqlstate, (what, err.diag.message_primary)
    assert err.diag.message_primary.startswith("sample 2 of 3 rejected"), err.diag.message_primary
    assert "Sample 2" in err.diag.message_detail and "Nothing was written" in err.diag.message_detail
    assert err.diag.message_hint
    assert count(conn) == 0


def test_a_bucket_repeated_within_a_batch_is_refused(conn):
    t = NOW()
    with pytest.raises(psycopg.Error) as info:
        put(conn, [good(t), good(t - timedelta(seconds=10)), good(t)])
    assert info.value.diag.sqlstate == "RO025"
    assert "sample 3 of 3" in info.value.diag.message_primary
    assert count(conn) == 0


@pytest.mark.parametrize("payload", ["null", '{"metric": "full_state_rate"}', '"x"', "3"])
def test_a_batch_that_is_not_an_array_is_refused(conn, payload):
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (payload,))
    assert info.value.diag.sqlstate == "RO020"


def test_an_empty_batch_writes_nothing(conn):
    assert put(conn, []) == 0


def test_sql_injection_strings_are_refused_as_unknown_metrics_never_executed(conn):
    evil = "x'); drop table chat_v11.metric_sample; --"
    with pytest.raises(psycopg.Error) as info:
        put(conn, [sample("full_state_rate", "canary", NOW()) | {"metric": evil}])
    assert info.value.diag.sqlstate == "RO021"
    assert count(conn) == 0


def test_a_p0_event_through_ingestion_leaves_the_kill_switch_on_when_the_call_returns(conn):
    conn.execute("set chat.actor = 'exporter'")
    t = NOW()
    before = state(conn)["version"]
    put(
        conn,
        [
            sample("ack_without_receipt_10s_rate", "canary", t, 2, 500),
            sample("ack_without_receipt_10s_rate", "control", t, 0, 50000),
        ],
    )
    s = state(conn)
    assert (s["kill_switch"], s["promotion_frozen"], s["version"]) == (True, True, before + 1)
    last = history(conn, 1)[0]
    assert (last["action"], last["actor"], last["changed_by"]) == ("auto_kill", "guardrail", "postgres")
    assert "ack_without_receipt_10s_rate" in last["reason"] and "0.000040" in last["reason"]
    assert last["gate_snapshot"]["rollout_decision"] == "ROLLBACK"
    assert count(conn) == 2


def test_the_kill_happens_in_the_transaction_that_wrote_the_evidence(conn):
    with pytest.raises(psycopg.Error):
        with conn.transaction():
            put(conn, [sample("read_rollback_detected_rate", "canary", NOW(), 1, 500)])
            assert state(conn)["kill_switch"] is True  # inside the writer's transaction already
            raise psycopg.errors.RaiseException("writer rolls back")
    assert state(conn)["kill_switch"] is False
    assert count(conn) == 0


def test_with_auto_kill_off_a_p0_event_only_turns_the_gates_to_rollback(conn):
    conn.execute("select chat_set_v11_policy('auto_kill', 'false')")
    put(conn, [sample("timeline_duplicate_detected_rate", "control", NOW(), 1, 9000)])
    assert state(conn)["kill_switch"] is False
    gates = conn.execute("select gate_p0_ok, rollout_decision from chat_get_v11_release_gates()").fetchone()
    assert gates == (False, "ROLLBACK")


def test_a_send_stall_above_threshold_in_one_cohort_kills(conn):
    t = NOW()
    put(conn, [sample("send_stall_rate", "canary", t, 30, 1000), sample("send_stall_rate", "control", t, 10, 90000)])
    assert state(conn)["kill_switch"] is True
    assert "send_stall_rate" in history(conn, 1)[0]["reason"]


def test_a_send_stall_below_threshold_does_not_kill(conn):
    t = NOW()
    put(conn, [sample("send_stall_rate", "canary", t, 5, 1000)])
    assert state(conn)["kill_switch"] is False


def test_a_new_pending_forever_kills_and_an_existing_kill_is_not_repeated(conn):
    t = NOW()
    put(conn, [sample("pending_forever_count", "canary", t, 1)])
    assert state(conn)["kill_switch"] is True
    v = state(conn)["version"]
    put(conn, [sample("pending_forever_count", "canary", t + timedelta(seconds=-10), 2)])
    assert state(conn)["version"] == v  # already stopped: no second auto_kill row


def test_the_ingest_role_writes_samples_and_the_kill_is_recorded_as_the_guardrail(conn):
    with conn.transaction():
        conn.execute("set local role chat_rollout_ingest")
        put(conn, [sample("ack_without_receipt_10s_rate", "canary", NOW(), 1, 100)])
    last = history(conn, 1)[0]
    assert (last["action"], last["actor"]) == ("auto_kill", "guardrail")


def test_samples_json_keys_may_be_in_any_order_and_value_may_be_null_for_rates(conn):
    t = NOW()
    raw = json.dumps(
        [
            {
                "denominator": 10,
                "bucket_start": iso(t),
                "value": None,
                "numerator": 0,
                "cohort": "control",
                "metric": "forced_resync_rate",
            }
        ]
    )
    assert conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (raw,)).fetchone()[0] == 1


# --- the columnar fast path: the same rules with one array per field -------------------------------------------

COLUMNAR = (
    "select chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[], "
    "%s::float8[])"
)


def columns(samples: list[dict]) -> tuple:
    return (
        [s["metric"] for s in samples],
        [s["cohort"] for s in samples],
        [s["bucket_start"] for s in samples],
        [s.get("numerator") for s in samples],
        [s.get("denominator") for s in samples],
        [s.get("value") for s in samples],
    )


def test_columnar_samples_are_written_and_replace_old_buckets(conn):
    t = NOW() - timedelta(minutes=1)
    batch = [
        sample("full_state_rate", "canary", t, 3, 1000),
        sample("recovery_p95_ms", "control", t),
        sample("pending_forever_count", "control", t),
    ]
    assert conn.execute(COLUMNAR, columns(batch)).fetchone()[0] == 3
    batch[0]["numerator"] = 4
    assert conn.execute(COLUMNAR, columns(batch[:1])).fetchone()[0] == 1
    assert conn.execute("select sum(numerator) from chat_v11.metric_sample").fetchone()[0] == 4
    assert count(conn) == 3


@pytest.mark.parametrize(
    "change,sqlstate",
    [
        ({"metric": "nope"}, "RO021"),
        ({"value": float("nan"), "metric": "recovery_p95_ms"}, "RO022"),
        ({"value": float("inf"), "metric": "recovery_p95_ms"}, "RO022"),
        ({"numerator": 5, "denominator": 4}, "RO022"),
        ({"denominator": -1}, "RO022"),
        ({"cohort": "beta"}, "RO022"),
        ({"bucket_start": "2026-11-26T10:00:01Z"}, "RO023"),
    ],
)
def test_columnar_bad_sample_is_named_and_nothing_is_written(conn, change, sqlstate):
    t = NOW() - timedelta(minutes=1)
    batch = [good(t), good(t - timedelta(seconds=10)) | change]
    with pytest.raises(psycopg.Error) as info:
        conn.execute(COLUMNAR, columns(batch))
    assert info.value.diag.sqlstate == sqlstate
    assert info.value.diag.message_primary.startswith("sample 2 of 2 rejected")
    assert count(conn) == 0


def test_columnar_arrays_of_different_lengths_are_refused(conn):
    with pytest.raises(psycopg.Error) as info:
        conn.execute(COLUMNAR, (["full_state_rate"], ["canary", "control"], [iso(NOW())], [0], [1], None))
    assert info.value.diag.sqlstate == "RO020"


def test_columnar_p0_event_kills_in_the_same_call(conn):
    conn.execute(COLUMNAR, columns([sample("read_rollback_detected_rate", "canary", NOW(), 1, 300)]))
    assert state(conn)["kill_switch"] is True
    assert history(conn, 1)[0]["action"] == "auto_kill"
