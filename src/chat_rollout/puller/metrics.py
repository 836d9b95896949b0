"""The puller's own /metrics registry (served with ``--listen``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from .common import REASONS


class PullMetrics:
    """The puller's own series, served on /metrics with ``--listen``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.errors = Counter("chat_rollout_pull_errors", "Queries and writes of chat-rollout pull that failed, by "
                              "reason.", ["reason"], registry=self.registry)
        for reason in REASONS:
            self.errors.labels(reason)
        self.consecutive = Gauge("chat_rollout_pull_consecutive_errors", "Pull cycles in a row that saw an error "
                                 "(0 after a clean cycle).", registry=self.registry)
        self.last_success = Gauge("chat_rollout_pull_last_success_timestamp_seconds", "When the last pull cycle "
                                  "ended without an error (Unix time; 0: never).", registry=self.registry)
        self.buckets = Counter("chat_rollout_pull_buckets_written", "Buckets written by chat-rollout pull (one per "
                               "metric, cohort and bucket that got a sample).", registry=self.registry)
