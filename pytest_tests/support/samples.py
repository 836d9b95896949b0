"""Metric samples and timelines for the ingestion, guardrail, gate and incident tests.

``sample`` and ``iso`` are the ones ``tools/plpgsql_coverage.py`` writes too (``tools/metric_samples.py``).
"""

from __future__ import annotations

import json
from datetime import timedelta

from tools.metric_samples import iso, sample

from chat_rollout import scenarios

__all__ = ["P0_RATES", "healthy", "healthy_p0", "iso", "put", "sample"]

P0_RATES = [
    "ack_without_receipt_10s_rate",
    "timeline_duplicate_detected_rate",
    "read_rollback_detected_rate",
    "send_stall_rate",
]


def healthy_p0(start: timedelta, end: timedelta, anchor) -> list[dict]:
    """Healthy P0 samples (no events) for both cohorts, every 10 s from anchor+start to anchor+end."""
    out = []
    t = anchor + start
    while t <= anchor + end:
        for metric in P0_RATES:
            out += [sample(metric, "control", t, 0, 20000), sample(metric, "canary", t, 0, 200)]
        out += [sample("pending_forever_count", "control", t, 0), sample("pending_forever_count", "canary", t, 0)]
        t += timedelta(seconds=10)
    return out


def put(conn, samples: list[dict]) -> int:
    """Write samples through the public JSON path; returns how many were stored."""
    return conn.execute("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(samples),)).fetchone()[0]


def healthy(conn, minutes: int = 60, end_offset: timedelta = timedelta(0)) -> None:
    """Healthy traffic in both cohorts over the last `minutes`, through the public path."""
    scenario = scenarios.load("healthy_canary")
    anchor = scenarios.anchor_now() + end_offset
    samples = [s for s in scenario.samples(anchor) if s["bucket_start"] >= iso(anchor - timedelta(minutes=minutes))]
    scenarios.write_samples(conn, samples)
