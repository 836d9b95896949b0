"""Revision 0005 turns the metric store into daily partitions and back without losing a sample."""

from __future__ import annotations

import psycopg

from chat_rollout import migrate

ROWS = """
insert into chat_v11.metric_sample (metric, cohort, bucket_start, numerator, denominator)
select 'full_state_rate', c, date_trunc('hour', now()) - g * interval '10 minutes', g % 7, 100
  from generate_series(0, 6 * 24 * 45) as g, unnest(array['canary', 'control']) as c
"""
SNAPSHOT = (
    "select metric, cohort, bucket_start, numerator, denominator, value, written_at "
    "from chat_v11.metric_sample order by 1, 2, 3"
)


def test_upgrade_to_0005_moves_every_sample_into_partitions_and_downgrade_moves_them_back(empty_db):
    _, url = empty_db
    migrate.upgrade(url, "0004")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ROWS)
        before = conn.execute(SNAPSHOT).fetchall()
    assert len(before) == 2 * (6 * 24 * 45 + 1)
    migrate.upgrade(url, "0005")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(SNAPSHOT).fetchall() == before
        assert (
            conn.execute("select relkind from pg_class where oid = 'chat_v11.metric_sample'::regclass").fetchone()[0]
            == "p"
        )
        spread = dict(
            conn.execute(
                "select tableoid::regclass::text = 'chat_v11.metric_sample_default', count(*) "
                "from chat_v11.metric_sample group by 1"
            ).fetchall()
        )
        # days within the 30-day retention got their partition; older samples wait in the default for pruning
        assert spread[False] > spread[True] > 0
        assert conn.execute("select to_regclass('chat_v11.metric_sample_unpartitioned')").fetchone()[0] is None
    migrate.downgrade(url, "0004")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(SNAPSHOT).fetchall() == before
        assert (
            conn.execute("select relkind from pg_class where oid = 'chat_v11.metric_sample'::regclass").fetchone()[0]
            == "r"
        )
        assert (
            conn.execute("select to_regprocedure('chat_v11.ensure_sample_partitions(date, date)')").fetchone()[0]
            is None
        )
    migrate.upgrade(url, "head")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(SNAPSHOT).fetchall() == before
