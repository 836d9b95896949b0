"""Issue 19: the per-minute gate evaluation equals the evaluation it replaced, row for row, at every p_at.

chat_v11.evaluate_checks reads the whole minutes of each window from chat_v11.metric_minute and only the buckets of
the two partial minutes (and the values of the P1 latency median) from the samples (chat_v11.window_totals). The
reference is the evaluation in force before revision 0013 (frozen by 0005), verbatim but for its name: read from
the released downgrade of 0013, which restores it (so it is the one copy, pinned by migrations/released.sum), reading
every bucket through chat_v11.cohort_window. Both are compared as text, row by row (so a numeric's scale counts too),
for every scenario in scenarios/ and for random timelines (gaps, nulls, re-sent buckets, deletes, retention in the
middle of a minute), at p_at on bucket and minute edges, a microsecond either side, mid-minute and at random, for
the stage's own windows, with the kill switch on and with the exit windows of a resume (p_p0_window).
"""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import PROJECT_ROOT, scenarios
from pytest_tests.support.samples import iso, sample

# the earlier evaluate_checks, as revision 0013's downgrade restores it (a released script: it never changes)
DOWNGRADE_0013 = PROJECT_ROOT / "migrations" / "versions" / "0013_fast_gates" / "downgrade.sql"
RESTORED = "-- restored from revision 0005_performance (function chat_v11.evaluate_checks("


def reference_sql() -> str:
    """The restored block of the earlier evaluate_checks, renamed chat_v11.evaluate_checks_reference."""
    text = DOWNGRADE_0013.read_text(encoding="utf-8")
    start = text.index(RESTORED)
    end = text.index("\n-- restored from ", start + len(RESTORED))
    return text[start:end].replace("chat_v11.evaluate_checks(", "chat_v11.evaluate_checks_reference(")


# every p_at of the list where the two evaluations differ, with the first differing rows
MISMATCHES = """
select p.at,
       array(select c::text from chat_v11.evaluate_checks(p.at, %(stage)s, %(kill)s, %(window)s::interval) as c
              order by c.metric),
       array(select r::text from chat_v11.evaluate_checks_reference(p.at, %(stage)s, %(kill)s, %(window)s::interval)
                 as r order by r.metric)
  from unnest(%(ats)s::timestamptz[]) as p (at)
 where array(select c::text from chat_v11.evaluate_checks(p.at, %(stage)s, %(kill)s, %(window)s::interval) as c
              order by c.metric)
       is distinct from
       array(select r::text from chat_v11.evaluate_checks_reference(p.at, %(stage)s, %(kill)s, %(window)s::interval)
                 as r order by r.metric)
"""

# the per-minute totals against a recount of the samples, both ways
MINUTES_DRIFT = """
with recount as (
    select s.metric, s.cohort,
           date_bin('1 minute', s.bucket_start, '2000-01-01 00:00:00+00'::timestamptz) as minute,
           count(*) as buckets, count(s.numerator) as numerators,
           sum(s.numerator)::numeric as numerator_sum, count(s.denominator) as denominators,
           sum(s.denominator)::numeric as denominator_sum, max(s.bucket_start) as newest, min(s.bucket_start) as oldest
      from chat_v11.metric_sample as s
     group by 1, 2, 3
), kept as (
    select metric, cohort, minute, buckets, numerators, numerator_sum, denominators, denominator_sum, newest, oldest
      from chat_v11.metric_minute
)
select 'missing' as side, * from (select * from recount except select * from kept) as a
union all
select 'extra', * from (select * from kept except select * from recount) as b
"""

VARIANTS = [("canary_1", False, None), ("canary_1", True, None), ("off", False, None), ("canary_1", True, "45 minutes")]


def _reference(conn) -> None:
    conn.execute(reference_sql())


def _edges(at) -> list:
    """p_at around one moment: itself, a microsecond either side, its bucket and minute edges, mid-minute."""
    minute = at.replace(second=0, microsecond=0)
    out = [at, at - timedelta(microseconds=1), at + timedelta(microseconds=1)]
    for base in (minute, minute + timedelta(minutes=1)):
        for seconds in (0, 5, 10, 30, 49.999999, 50, 50.000001, 59.999999):
            out.append(base + timedelta(seconds=seconds))
    return out


def _compare(conn, ats: list, label: str) -> None:
    checked = 0
    for stage, kill, window in VARIANTS:
        rows = conn.execute(
            MISMATCHES, {"stage": stage, "kill": kill, "window": window, "ats": ats}
        ).fetchall()
        checked += len(ats)
        if rows:
            at, new, old = rows[0]
            differing = [(n, o) for n, o in zip(new, old, strict=False) if n != o][:2]
            pytest.fail(
                f"{label}: {len(rows)} of {len(ats)} p_at differ for ({stage}, {kill}, {window}); first at {at}: "
                f"{differing or (len(new), len(old))}"
            )
    assert checked == len(ats) * len(VARIANTS)


def _drift(conn) -> list:
    return conn.execute(MINUTES_DRIFT).fetchall()


@pytest.mark.parametrize("name", scenarios.names())
def test_every_scenario_evaluates_as_before_at_every_edge(conn, name):
    _reference(conn)
    scenario = scenarios.load(name)
    anchor = scenarios.anchor_now()
    scenarios.apply_rules(conn, scenario)
    samples = scenario.samples(anchor)
    scenarios.write_samples(conn, samples)
    assert _drift(conn) == []

    rng = random.Random(name)
    ats = []
    for checkpoint in scenario.checkpoints:
        ats += _edges(anchor + checkpoint.at)
    if samples:
        first = min(s["bucket_start"] for s in samples)
        ats += _edges(anchor - timedelta(minutes=31))
        start = conn.execute("select %s::timestamptz", (first,)).fetchone()[0]
        ats += _edges(start) + _edges(start + timedelta(minutes=15)) + _edges(start + timedelta(minutes=30))
        span = (anchor - start).total_seconds() + 3600
        ats += [start + timedelta(seconds=rng.uniform(-600, span)) for _ in range(60)]
    _compare(conn, ats, f"scenario {name}")


def _random_timeline(rng: random.Random, anchor, minutes: int) -> list[dict]:
    """Every metric and cohort over the last `minutes`, with gaps, events, nulls where the kind allows them."""
    out = []
    rates = scenarios.RATE_METRICS
    start = anchor - timedelta(minutes=minutes)
    for metric in scenarios.ALL_METRICS:
        for cohort in ("canary", "control"):
            gap = rng.choice([0.0, 0.05, 0.3, 0.8])
            t = start
            while t <= anchor:
                if rng.random() >= gap:
                    if metric in rates:
                        den = rng.choice([0, 1, 50, 200, 20000])
                        num = rng.choice([0, 0, 0, 0, 1, 3]) if den else 0
                        out.append(sample(metric, cohort, t, min(num, den), den))
                    elif metric == "pending_forever_count":
                        s = sample(metric, cohort, t, rng.choice([0, 0, 0, 0, 0, 1]))
                        if rng.random() < 0.5:
                            s["denominator"] = rng.choice([1, 10])
                        out.append(s)
                    else:
                        s = sample(metric, cohort, t, None, None, round(rng.uniform(100, 900), 3))
                        if rng.random() < 0.5:
                            s["denominator"] = rng.choice([1, 40])
                        out.append(s)
                t += timedelta(seconds=10)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_timelines_evaluate_as_before_through_resends_deletes_and_retention(conn, seed):
    _reference(conn)
    rng = random.Random(seed)
    anchor = scenarios.anchor_now()
    timeline = _random_timeline(rng, anchor, 75)
    rng.shuffle(timeline)
    # written in random batches, several per minute and bucket, as concurrent exporters would
    i = 0
    while i < len(timeline):
        n = rng.choice([1, 18, 100, 1000])
        conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(timeline[i : i + n]),))
        i += n
    # re-sent buckets replace stored ones (the upsert path: insert and update triggers)
    resent = []
    for s in rng.sample(timeline, 300):
        r = dict(s)
        if r["metric"] == "recovery_p95_ms":
            r["value"] = round(rng.uniform(100, 900), 3)
        elif r["metric"] == "pending_forever_count":
            r["numerator"] = rng.choice([0, 1])
        else:
            r["numerator"] = min(r["denominator"], rng.choice([0, 2]))
        resent.append(r)
    resent.append(sample("recovery_p95_ms", "canary", anchor + timedelta(seconds=10), None, None, 321.5))  # new
    conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(resent),))
    # a DBA's DELETE through the parent (the delete trigger), in the middle of minutes
    cut = anchor - timedelta(minutes=20, seconds=30)
    conn.execute(
        "delete from chat_v11.metric_sample where bucket_start between %s and %s and cohort = 'canary'",
        (cut, cut + timedelta(seconds=100)),
    )
    assert _drift(conn) == []

    ats = _edges(anchor) + _edges(anchor - timedelta(minutes=15)) + _edges(anchor - timedelta(minutes=30))
    ats += _edges(cut) + _edges(anchor - timedelta(minutes=75))
    ats += [anchor + timedelta(seconds=rng.uniform(-80 * 60, 120)) for _ in range(120)]
    ats += [anchor - timedelta(seconds=10 * rng.randint(0, 480)) for _ in range(30)]  # on bucket starts
    _compare(conn, ats, f"random timeline {seed}")

    # retention in the middle of a minute: the minute holding the cutoff is recounted, older minutes go
    cutoff = anchor - timedelta(minutes=50, seconds=25, microseconds=7)
    conn.execute("select * from chat_v11.prune_samples(%s)", (cutoff,))
    left = conn.execute("select count(*) from chat_v11.metric_sample where bucket_start < %s", (cutoff,))
    assert left.fetchone()[0] == 0
    assert _drift(conn) == []
    ats = _edges(cutoff) + _edges(cutoff + timedelta(minutes=15)) + _edges(cutoff + timedelta(minutes=30))
    ats += [anchor + timedelta(seconds=rng.uniform(-80 * 60, 60)) for _ in range(60)]
    _compare(conn, ats, f"random timeline {seed} after retention")


def test_the_totals_stay_exact_under_concurrent_writers_of_the_same_minutes(conn, db_url):
    """Two sessions write different buckets of the same minutes, one waiting for the other's minute rows: the
    later recount sees the committed batch (no lost count)."""
    anchor = scenarios.anchor_now().replace(second=0) - timedelta(minutes=3)
    first = [sample("send_stall_rate", "canary", anchor + timedelta(seconds=10 * k), 0, 100) for k in (0, 2, 4)]
    second = [sample("send_stall_rate", "canary", anchor + timedelta(seconds=10 * k), 0, 100) for k in (1, 3, 5)]
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        a.execute("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(first),))
        b.execute("set statement_timeout = '20s'")
        done = threading.Event()

        def write_b():
            b.execute("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(second),))
            b.commit()
            done.set()

        t = threading.Thread(target=write_b)
        t.start()
        assert not done.wait(0.5)  # b waits for a's minute row
        a.commit()
        t.join(10)
        assert done.is_set()
    assert _drift(conn) == []
    row = conn.execute(
        "select buckets, denominator_sum from chat_v11.metric_minute where metric = 'send_stall_rate' and minute = %s",
        (iso(anchor),),
    ).fetchone()
    assert row == (6, 600)
