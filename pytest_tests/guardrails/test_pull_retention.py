"""Revision 0010: the pull provenance (chat_v11.metric_pull, what chat-rollout pull read) follows the samples it
explains: chat_run_v11_maintenance() deletes the records past the retention policy and says so; younger ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg.types.json import Jsonb

from pytest_tests.support.calls import login


def _bucket(age: timedelta) -> datetime:
    moment = datetime.now(UTC) - age
    return moment.replace(second=moment.second - moment.second % 10, microsecond=0)


def _record(bucket: datetime) -> dict:
    return {"metric": "ack_without_receipt_10s_rate", "cohort": "canary", "bucket_start": bucket.isoformat(),
            "field": "numerator", "query": "query=x&time=0", "query_time": bucket.isoformat(), "outcome": "empty",
            "value": None, "answer_sha256": "0" * 64, "answer_excerpt": "{}"}  # fmt: skip


def test_maintenance_deletes_pull_records_past_the_retention(conn, db_url):
    old, young = _bucket(timedelta(days=31)), _bucket(timedelta(days=1))
    with login(db_url, "chat_test_ingest") as ingest:
        assert ingest.execute("select public.chat_put_v11_metric_pulls(%s)",
                              (Jsonb([_record(old), _record(young)]),)).fetchone()[0] == 2  # fmt: skip
        rows = ingest.execute("select action, detail from public.chat_run_v11_maintenance()").fetchall()
    assert ("prune", "pull records older than 30 days removed: 1 rows") in rows
    kept = conn.execute("select bucket_start from chat_v11.metric_pull").fetchall()
    assert kept == [(young,)]
    with login(db_url, "chat_test_ingest") as ingest:  # a second run has nothing more to remove
        again = ingest.execute("select action, detail from public.chat_run_v11_maintenance()").fetchall()
    assert not any(detail.startswith("pull records") for _, detail in again)
