"""SPEC 4.4 and issues 6, 12: the metric store is partitioned by UTC day. Partitions are created ahead, a default
partition takes any valid sample whose day has none, retention drops whole days (no bulk DELETE), maintenance never
queues behind a busy lock, and a gate window reads only the partitions of its window. Since issue 12 the partition
work is chat_run_v11_maintenance()'s; the guardrails only report it overdue (pytest_tests/guardrails/test_maintenance.py
for the lock and the transaction it runs in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pytest_tests.support.samples import put, sample


def run(conn) -> list[tuple]:
    return conn.execute("select action, version, detail from chat_run_v11_guardrails()").fetchall()


def maintain(conn) -> list[tuple]:
    return conn.execute("select action, detail from chat_run_v11_maintenance()").fetchall()


def partitions(conn) -> dict[str, str]:
    """name -> bound expression of every partition of chat_v11.metric_sample."""
    conn.execute("set timezone = 'UTC'")
    return dict(
        conn.execute(
            "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i "
            "join pg_class c on c.oid = i.inhrelid where i.inhparent = 'chat_v11.metric_sample'::regclass"
        ).fetchall()
    )


def where(conn, metric: str, at: datetime) -> str:
    return conn.execute(
        "select tableoid::regclass::text from chat_v11.metric_sample where metric = %s and bucket_start = %s",
        (metric, at),
    ).fetchone()[0]


def utc_today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_new_database_has_daily_partitions_from_yesterday_to_a_week_ahead_and_a_default(conn):
    parts = partitions(conn)
    today = utc_today()
    for offset in range(-1, 7):  # yesterday .. 7 days ahead at install; 6 allows for a run crossing midnight UTC
        day = today + timedelta(days=offset)
        name = f"metric_sample_p{day:%Y%m%d}"
        assert parts[name] == (
            f"FOR VALUES FROM ('{day:%Y-%m-%d} 00:00:00+00') TO ('{day + timedelta(days=1):%Y-%m-%d} 00:00:00+00')"
        )
    assert parts["metric_sample_default"] == "DEFAULT"
    # partitions grant nothing to anyone but their owner, like every relation of chat_v11
    acl = conn.execute(
        "select count(*) from pg_class c join pg_inherits i on i.inhrelid = c.oid "
        "where i.inhparent = 'chat_v11.metric_sample'::regclass and c.relacl is not null"
    ).fetchone()[0]
    assert acl == 0


def test_a_sample_of_a_day_without_a_partition_is_stored_in_the_default_and_moves_when_its_day_gets_one(conn):
    old = utc_today() - timedelta(days=20, hours=-3)
    assert put(conn, [sample("full_state_rate", "control", old, 3, 100)]) == 1
    assert where(conn, "full_state_rate", old) == "chat_v11.metric_sample_default"
    day = old.date()
    assert conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (day, day)).fetchone()[0] == 1
    assert where(conn, "full_state_rate", old) == f"chat_v11.metric_sample_p{day:%Y%m%d}"
    row = conn.execute(
        "select numerator, denominator from chat_v11.metric_sample where bucket_start = %s", (old,)
    ).fetchone()
    assert row == (3, 100)
    assert conn.execute("select count(*) from chat_v11.metric_sample_default").fetchone()[0] == 0
    # idempotent: the day exists now
    assert conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (day, day)).fetchone()[0] == 0


def test_a_very_old_sample_is_not_refused(conn):
    at = datetime(2019, 3, 1, 12, 0, 10, tzinfo=UTC)
    assert put(conn, [sample("forced_resync_rate", "canary", at, 0, 10)]) == 1
    assert where(conn, "forced_resync_rate", at) == "chat_v11.metric_sample_default"


@pytest.mark.parametrize(
    "first,last",
    [(None, "2026-01-01"), ("2026-01-02", "2026-01-01"), ("2025-01-01", "2026-12-31")],
    ids=["null", "reversed", "too-long"],
)
def test_ensure_refuses_a_bad_range_with_ro011_and_creates_nothing(conn, first, last):
    before = partitions(conn)
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select chat_v11.ensure_sample_partitions(%s::date, %s::date)", (first, last))
    assert info.value.sqlstate == "RO011"
    assert info.value.diag.message_detail and info.value.diag.message_hint
    assert partitions(conn) == before


def test_maintenance_creates_missing_partitions_ahead_and_the_guardrails_only_report_them(conn):
    ahead = utc_today() + timedelta(days=2)
    name = f"metric_sample_p{ahead:%Y%m%d}"
    conn.execute(f"drop table chat_v11.{name}")
    actions = run(conn)
    assert [a[0] for a in actions] == ["maintenance"]
    assert f"{ahead:%Y-%m-%d}" in actions[0][2] and "chat_run_v11_maintenance()" in actions[0][2]
    assert name not in partitions(conn)  # the guardrails run no DDL
    actions = maintain(conn)
    assert [a[0] for a in actions] == ["partition"]
    assert "1 daily partitions" in actions[0][1]
    assert name in partitions(conn)
    assert maintain(conn) == []  # idempotent
    assert run(conn) == []  # no longer overdue


def test_maintenance_leaves_partitions_alone_while_3_days_ahead_exist(conn):
    """DDL every few days, not at every midnight: days 4 to 7 ahead are only created once day 3 is missing."""
    far = utc_today() + timedelta(days=6)
    conn.execute(f"drop table chat_v11.metric_sample_p{far:%Y%m%d}")
    assert maintain(conn) == []
    assert run(conn) == []
    assert f"metric_sample_p{far:%Y%m%d}" not in partitions(conn)


def test_retention_drops_whole_days_and_trims_only_the_straddling_day(conn):
    today = utc_today()
    first = (today - timedelta(days=6)).date()
    conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (first, today.date()))
    now = datetime.now(UTC).replace(microsecond=0)
    now = now.replace(second=now.second - now.second % 10)
    stamps = [now - timedelta(days=d, minutes=1) for d in range(0, 7)]  # one sample per day, 0 .. 6 days old
    stamps.append(now - timedelta(days=40))  # in the default partition
    put(conn, [sample("full_state_rate", "control", t, 1, 10) for t in stamps])
    conn.execute("select chat_set_v11_policy('retention', '\"3 days\"')")
    assert run(conn) == []  # the guardrails prune nothing
    actions = maintain(conn)
    assert [a[0] for a in actions] == ["prune"]
    kept = [r[0] for r in conn.execute("select bucket_start from chat_v11.metric_sample order by 1").fetchall()]
    cutoff = now - timedelta(days=3)
    assert kept == sorted(t for t in stamps if t >= cutoff)
    parts = partitions(conn)
    cutoff_day = cutoff.replace(hour=0, minute=0, second=0)
    for d in range(0, 7):
        day = today - timedelta(days=d)
        assert (f"metric_sample_p{day:%Y%m%d}" in parts) == (day >= cutoff_day)
    assert "daily partitions dropped whole" in actions[0][1]
    assert maintain(conn) == []  # idempotent


def test_maintenance_skips_and_never_queues_behind_a_busy_lock(conn, db_url):
    old = (utc_today() - timedelta(days=10)).date()
    conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (old, old))
    conn.execute("select chat_set_v11_policy('retention', '\"5 days\"')")
    holder = psycopg.connect(db_url)
    try:
        holder.execute("select count(*) from chat_v11.metric_sample")  # a long reader: AccessShare until it ends
        actions = maintain(conn)
        assert [a[0] for a in actions] == ["skipped"]
        assert "busy for 50 ms" in actions[0][1] and "older than 5 days" in actions[0][1]
        assert f"metric_sample_p{old:%Y%m%d}" in partitions(conn)  # nothing half-done
    finally:
        holder.close()
    actions = maintain(conn)
    assert [a[0] for a in actions] == ["prune"]
    assert f"metric_sample_p{old:%Y%m%d}" not in partitions(conn)


def test_a_guardrails_run_that_changed_the_state_reports_maintenance_too_and_creates_nothing(conn):
    """A run that froze the rollout still says that maintenance is overdue; the partitions come from maintenance."""
    from pytest_tests.support.calls import arrange_state

    arrange_state(conn, "promote", "canary_1", False, False)
    ahead = utc_today() + timedelta(days=1)
    conn.execute(f"drop table chat_v11.metric_sample_p{ahead:%Y%m%d}")
    actions = run(conn)  # no P0 data at all: stale, so the run freezes promotion
    assert [a[0] for a in actions] == ["hold", "maintenance"]
    assert f"metric_sample_p{ahead:%Y%m%d}" not in partitions(conn)
    assert [a[0] for a in maintain(conn)] == ["partition"]
    assert f"metric_sample_p{ahead:%Y%m%d}" in partitions(conn)


def test_a_gate_window_reads_only_the_partitions_of_its_window(conn):
    """A generic plan (bounds are parameters, as in PL/pgSQL) prunes at executor start-up."""
    first = (utc_today() - timedelta(days=20)).date()
    conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (first, utc_today().date()))
    total = conn.execute(
        "select count(*) from pg_inherits where inhparent = 'chat_v11.metric_sample'::regclass"
    ).fetchone()[0]
    assert total >= 22  # 21 days and the default, at least
    conn.execute("set plan_cache_mode = force_generic_plan")
    conn.execute(
        "prepare w(text, text, timestamptz, timestamptz) as select count(*), sum(numerator) "
        "from chat_v11.metric_sample where metric = $1 and cohort = $2 and bucket_start > $3 and bucket_start <= $4"
    )
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "explain (analyze, costs off, timing off, summary off) "
            "execute w('full_state_rate', 'canary', now() - interval '30 minutes', now())"
        ).fetchall()
    )
    scanned = plan.count(" on metric_sample_")
    assert 1 <= scanned <= 2, plan
    assert "Subplans Removed" in plan
