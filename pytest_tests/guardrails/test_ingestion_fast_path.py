"""The fast ingestion path (docs/design.md, "Ingestion: how it reaches N samples/s") refuses exactly what the
exact validation refuses, names the same sample, and stays correct when writers of the same keys race:
cheap whole-batch checks first, the exact validation only on a hit; a plain INSERT of new buckets, an upsert
only when a key is stored already; a repeated bucket found by the upsert's 21000 and named RO025."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import state
from pytest_tests.support.samples import iso, put, sample

NOW = scenarios.anchor_now

COLUMNAR = (
    "select chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[], "
    "%s::float8[])"
)


def columns(samples: list[dict]) -> tuple:
    return (
        [s.get("metric") for s in samples],
        [s.get("cohort") for s in samples],
        [s.get("bucket_start") for s in samples],
        [s.get("numerator") for s in samples],
        [s.get("denominator") for s in samples],
        [s.get("value") for s in samples],
    )


def count(conn) -> int:
    return conn.execute("select count(*) from chat_v11.metric_sample").fetchone()[0]


def good(t) -> dict:
    return sample("full_state_rate", "canary", t, 1, 100)


def refused(conn, call, sqlstate: str, position: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        call()
    err = info.value
    assert err.diag.sqlstate == sqlstate, err.diag.message_primary
    assert err.diag.message_primary.startswith(f"sample {position} rejected"), err.diag.message_primary
    assert "Nothing was written" in err.diag.message_detail and err.diag.message_hint
    assert count(conn) == 0
    return err


# --- JSON shapes the whole-array JSON path test must not let through ------------------------------------------

JSON_BAD = [
    ("an object inside an array", "wrap"),
    ("metric as an array", {"metric": ["full_state_rate"]}),
    ("cohort as a number", {"cohort": 1}),
    ("numerator as an array", {"numerator": [1]}),
    ("numerator as a boolean", {"numerator": True}),
    ("value as a string", {"value": "1"}),
    ("count beyond bigint", {"numerator": 2**63, "denominator": 2**64}),
    ("fractional denominator", {"denominator": 100.5}),
    ("value beyond 1e12", {"value": 1e13}),
    ("bucket with a trailing newline", {"bucket_start": "2026-11-26T10:00:10Z\n"}),
    ("bucket as a number", {"bucket_start": 1795730000}),
    ("metric missing", {"metric": None}),
]


@pytest.mark.parametrize("what,change", JSON_BAD, ids=[b[0] for b in JSON_BAD])
def test_json_shape_problems_are_named_by_position(conn, what, change):
    t = NOW() - timedelta(minutes=2)
    bad: object = good(t + timedelta(seconds=10))
    if change == "wrap":
        bad = [bad]
    else:
        for key, value in change.items():
            if value is None:
                bad.pop(key)
            else:
                bad[key] = value
    err = refused(conn, lambda: put(conn, [good(t), bad, good(t + timedelta(seconds=20))]), "RO022", "2 of 3")
    assert "Sample 2" in err.diag.message_detail


def test_json_keys_in_any_order_with_nulls_and_offsets_are_read_in_order(conn):
    t = NOW() - timedelta(minutes=1)
    raw = json.dumps([
        {"value": None, "denominator": 1000, "numerator": 2, "bucket_start": iso(t), "cohort": "canary",
         "metric": "full_state_rate"},
        {"metric": "recovery_p95_ms", "cohort": "control", "bucket_start": iso(t).replace("Z", "+00:00"),
         "value": 812.5},
        {"metric": "pending_forever_count", "cohort": "canary", "bucket_start": iso(t), "numerator": 0},
    ])
    assert conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (raw,)).fetchone()[0] == 3
    rows = conn.execute(
        "select metric, cohort, numerator, denominator, value from chat_v11.metric_sample order by metric"
    ).fetchall()
    assert rows == [
        ("full_state_rate", "canary", 2, 1000, None),
        ("pending_forever_count", "canary", 0, None, None),
        ("recovery_p95_ms", "control", None, None, 812.5),
    ]


# --- typed problems: the whole-array checks, the per-row kind checks and the constraints behind them ----------

TYPED_BAD = [
    ("null metric", {"metric": None}, "RO021"),
    ("null cohort", {"cohort": None}, "RO022"),
    ("null bucket", {"bucket_start": None}, "RO022"),
    ("minus infinity bucket", {"bucket_start": "-infinity"}, "RO022"),
    ("infinity bucket", {"bucket_start": "infinity"}, "RO022"),
    ("rate without numerator", {"numerator": None}, "RO022"),
    ("latency without value", {"metric": "recovery_p95_ms", "value": None}, "RO022"),
    ("count without numerator", {"metric": "pending_forever_count", "numerator": None}, "RO022"),
    ("value beyond 1e12", {"metric": "recovery_p95_ms", "value": 2e12}, "RO022"),
    ("negative value", {"metric": "recovery_p95_ms", "value": -1.0}, "RO022"),
    ("misaligned by a microsecond", {"bucket_start": "2026-11-26T10:00:10.000001Z"}, "RO023"),
]


@pytest.mark.parametrize("what,change,sqlstate", TYPED_BAD, ids=[b[0] for b in TYPED_BAD])
def test_columnar_problems_are_named_by_position(conn, what, change, sqlstate):
    t = NOW() - timedelta(minutes=2)
    bad = good(t + timedelta(seconds=10)) | change
    batch = [good(t), bad, good(t + timedelta(seconds=20))]
    refused(conn, lambda: conn.execute(COLUMNAR, columns(batch)), sqlstate, "2 of 3")


def test_a_bad_sample_is_named_before_a_repeated_bucket_even_when_it_comes_later(conn):
    t = NOW() - timedelta(minutes=1)
    batch = [good(t), good(t), good(t + timedelta(seconds=20)) | {"cohort": "beta"}]
    refused(conn, lambda: conn.execute(COLUMNAR, columns(batch)), "RO022", "3 of 3")
    refused(conn, lambda: put(conn, batch), "RO022", "3 of 3")


def test_a_repeated_bucket_is_refused_when_the_batch_also_replaces_a_stored_one(conn):
    t = NOW() - timedelta(minutes=1)
    put(conn, [good(t)])
    batch = [good(t), good(t + timedelta(seconds=10)), good(t + timedelta(seconds=10))]
    with pytest.raises(psycopg.Error) as info:
        conn.execute(COLUMNAR, columns(batch))
    assert info.value.diag.sqlstate == "RO025"
    assert info.value.diag.message_primary.startswith("sample 3 of 3 rejected")
    assert "repeats metric, cohort and bucket_start of sample 2" in info.value.diag.message_primary
    assert count(conn) == 1


def test_a_batch_of_stored_and_new_buckets_replaces_the_stored_and_adds_the_new(conn):
    t = NOW() - timedelta(minutes=2)
    put(conn, [sample("full_state_rate", "canary", t, 1, 100), sample("full_state_rate", "control", t, 2, 200)])
    batch = [
        sample("full_state_rate", "control", t + timedelta(seconds=10), 7, 700),
        sample("full_state_rate", "control", t, 5, 500),
        sample("full_state_rate", "canary", t + timedelta(seconds=10), 3, 300),
    ]
    assert conn.execute(COLUMNAR, columns(batch)).fetchone()[0] == 3
    rows = conn.execute(
        "select cohort, bucket_start = %s, numerator, denominator from chat_v11.metric_sample order by 1, 2",
        (t,),
    ).fetchall()
    assert rows == [("canary", False, 3, 300), ("canary", True, 1, 100), ("control", False, 7, 700),
                    ("control", True, 5, 500)]


def test_a_p0_event_in_a_batch_that_replaces_stored_buckets_still_kills(conn):
    t = NOW()
    put(conn, [sample("read_rollback_detected_rate", "canary", t, 0, 500)])
    assert state(conn)["kill_switch"] is False
    put(conn, [sample("read_rollback_detected_rate", "canary", t, 1, 500)])
    assert state(conn)["kill_switch"] is True


# --- racing writers of the same keys ---------------------------------------------------------------------------


def racing_put(db_url: str, batch: list[dict], out: dict) -> None:
    try:
        with psycopg.connect(db_url, autocommit=True) as other:
            out["written"] = other.execute(COLUMNAR, columns(batch)).fetchone()[0]
    except psycopg.Error as exc:  # reported to the test
        out["error"] = exc


def waiting(conn, what: str) -> bool:
    return conn.execute(
        "select count(*) > 0 from pg_stat_activity where wait_event_type = 'Lock' and query like %s",
        (f"%{what}%",),
    ).fetchone()[0]


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_writer_of_the_same_new_buckets_waits_then_replaces_or_inserts_them(conn, db_url, outcome):
    t = NOW() - timedelta(minutes=1)
    first = [sample("full_state_rate", "canary", t, 1, 100), sample("full_state_rate", "control", t, 1, 100)]
    second = [sample("full_state_rate", "control", t, 2, 200), sample("full_state_rate", "canary", t, 2, 200)]
    out: dict = {}
    with psycopg.connect(db_url) as holder:  # a transaction that wrote the same keys and is still open
        holder.execute(COLUMNAR, columns(first))
        thread = threading.Thread(target=racing_put, args=(db_url, second, out))
        thread.start()
        deadline = time.monotonic() + 10
        while not waiting(conn, "chat_put_v11_metric_samples") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert waiting(conn, "chat_put_v11_metric_samples"), "the second writer did not wait for the first"
        if outcome == "commit":
            holder.commit()
        else:
            holder.rollback()
        thread.join(10)
    assert "error" not in out, out.get("error")  # no 23505, no deadlock
    assert out["written"] == 2
    rows = conn.execute("select numerator, denominator from chat_v11.metric_sample order by cohort").fetchall()
    assert rows == [(2, 200), (2, 200)]  # the later writer's values, nothing lost, nothing doubled


def test_writers_of_the_same_buckets_in_opposite_orders_never_deadlock(conn, db_url):
    t = NOW() - timedelta(minutes=5)
    keys = [(m, c, t + timedelta(seconds=10 * k)) for k in range(30) for m in ("full_state_rate", "forced_resync_rate")
            for c in ("canary", "control")]
    errors: list[Exception] = []

    def writer(order: list, numerator: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as other:
                for _ in range(15):
                    batch = [sample(m, c, at, numerator, 1000) for m, c, at in order]
                    other.execute(COLUMNAR, columns(batch))
        except psycopg.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(keys if n % 2 else keys[::-1], n)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert count(conn) == len(keys)
