"""One metric sample as the ingestion API takes it (a JSON object): shared by the tests and the coverage tool.

The tests import it as ``tools.metric_samples`` (through ``pytest_tests.support.samples``);
``tools/plpgsql_coverage.py``, run as a script with ``tools/`` on ``sys.path``, as ``metric_samples``.
Nothing here needs pytest.
"""

from __future__ import annotations

from datetime import datetime

from chat_rollout.utc import utc


def iso(t: datetime) -> str:
    """A bucket start as the ingestion API reads it: ISO 8601 in UTC, ``2026-11-26T10:00:10Z``."""
    return utc(t, "iso")


def sample(metric: str, cohort: str, at: datetime, numerator=0, denominator=1000, value=None) -> dict:
    """The sample of ``metric`` for ``cohort`` in the bucket starting ``at``, with the fields its kind takes:
    a value for recovery_p95_ms (800 ms by default), a numerator for pending_forever_count, else both counts."""
    s = {"metric": metric, "cohort": cohort, "bucket_start": iso(at)}
    if metric == "recovery_p95_ms":
        s["value"] = 800.0 if value is None else value
    elif metric == "pending_forever_count":
        s["numerator"] = numerator
    else:
        s["numerator"], s["denominator"] = numerator, denominator
    return s
