"""The puller: its database reads and writes, one cycle (:meth:`Puller.pull_once`) and the loop."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable

import psycopg
from prometheus_client import start_http_server
from psycopg.types.json import Jsonb

from ..connect import connect
from .alerts import AlertmanagerRead
from .common import BUCKET, FIELDS, CycleReport, PullError, Source, TooManyErrors, align, iso, log, refusal
from .metrics import PullMetrics
from .promql import PrometheusQueries


class Puller(PrometheusQueries, AlertmanagerRead):
    """Pulls the metric sources from the Prometheus at ``prometheus_url`` into the database of ``database_url``."""

    def __init__(
        self,
        database_url: str,
        prometheus_url: str,
        *,
        horizon: dt.timedelta = dt.timedelta(minutes=10),
        settle: float = 5.0,
        timeout: float = 5.0,
        max_consecutive_errors: int = 30,
        clock: Callable[[], float] = time.time,
        alertmanager_url: str | None = None,
        alert_severity_label: str = "severity",
    ) -> None:
        self.database_url = database_url
        self.prometheus_url = prometheus_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.alert_severity_label = alert_severity_label
        self.horizon = horizon
        self.settle = settle
        self.timeout = timeout
        self.max_consecutive_errors = max_consecutive_errors
        self.clock = clock
        self.metrics = PullMetrics()
        self.consecutive_errors = 0
        self._conn = None

    # --- the database -------------------------------------------------------------------------------------------

    def connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.database_url, autocommit=True, application_name="chat-rollout pull")
            self._conn.execute("select set_config('TimeZone', 'UTC', false)")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def sources(self) -> list[Source]:
        rows = self.connection().execute(
            "select metric, cohort, kind, numerator, denominator, value from public.chat_get_v11_metric_sources()"
        ).fetchall()
        return [
            Source(metric, cohort, kind, {f: e for f, e in zip(FIELDS, exprs, strict=True) if e is not None})
            for metric, cohort, kind, *exprs in rows
        ]

    def last_pulled(self, since: dt.datetime, until: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
        rows = self.connection().execute(
            "select metric, cohort, max(bucket_start) from public.chat_get_v11_metric_pulls(%s, %s) group by 1, 2",
            (since, until),
        ).fetchall()
        return {(metric, cohort): last for metric, cohort, last in rows}

    # --- one cycle ----------------------------------------------------------------------------------------------

    def last_complete_bucket(self, now: float | None = None) -> dt.datetime:
        moment = dt.datetime.fromtimestamp(self.clock() if now is None else now, dt.UTC)
        return align(moment - BUCKET - dt.timedelta(seconds=self.settle))

    def _error(self, report: CycleReport, reason: str, message: str) -> None:
        self.metrics.errors.labels(reason).inc()
        report.errors.append(f"{reason}: {message}")
        log.warning("pull error (%s): %s", reason, message)

    def pull_once(self, now: float | None = None) -> CycleReport:
        """One cycle (the module's docstring). Never raises for Prometheus' or a bucket's failures: they are counted
        and listed in the report; a database that cannot be reached raises (psycopg.Error)."""
        last_complete = self.last_complete_bucket(now)
        report = CycleReport(last_complete)
        if self.alertmanager_url is not None:
            self.pull_alerts(report)
        sources = self.sources()
        oldest = align(last_complete - self.horizon) + BUCKET
        done = self.last_pulled(oldest, last_complete)
        plan: dict[dt.datetime, list[Source]] = {}
        for source in sources:
            start = max(oldest, done[(source.metric, source.cohort)] + BUCKET) \
                if (source.metric, source.cohort) in done else oldest
            bucket = start
            while bucket <= last_complete:
                plan.setdefault(bucket, []).append(source)
                bucket += BUCKET
        for bucket in sorted(plan):
            samples, pulls = [], []
            for source in plan[bucket]:
                answers = []
                for field_name in FIELDS:
                    if field_name not in source.exprs:
                        continue
                    try:
                        answer = self.query(field_name, source.exprs[field_name], bucket + BUCKET)
                    except PullError as exc:
                        self._error(report, exc.reason, f"{source.metric}/{source.cohort}: {exc}")
                        if exc.reason in ("transport", "timeout"):
                            self._end_cycle(report)
                            return report
                        answers = None
                        break
                    log.info("%s/%s %s: %s -> %s %s (sha256 %s)", source.metric, source.cohort, iso(bucket),
                             answer.query, answer.outcome, answer.value, answer.answer_sha256[:12])
                    answers.append(answer)
                if answers is None:
                    continue
                sample = self.judge(source, bucket, answers, report)
                if sample is not None:
                    samples.append(sample)
                pulls += [
                    {"metric": source.metric, "cohort": source.cohort, "bucket_start": iso(bucket), "field": a.field,
                     "query": a.query, "query_time": iso(a.query_time), "outcome": a.outcome, "value": a.value,
                     "answer_sha256": a.answer_sha256, "answer_excerpt": a.answer_excerpt}
                    for a in answers
                ]
            if pulls:
                self.write(bucket, samples, pulls, report)
        if plan:
            self.connection().execute("select * from public.chat_run_v11_guardrails()").fetchall()
        self._end_cycle(report)
        return report

    def write(self, bucket: dt.datetime, samples: list[dict], pulls: list[dict], report: CycleReport) -> None:
        """One bucket, one transaction: its samples (the automatic kill judges them here) and their provenance."""
        conn = self.connection()
        try:
            with conn.transaction():
                conn.execute("select set_config('chat.actor', 'chat-rollout pull', true)")
                if samples:
                    conn.execute("select public.chat_put_v11_metric_samples(%s)", (Jsonb(samples),))
                conn.execute("select public.chat_put_v11_metric_pulls(%s)", (Jsonb(pulls),))
        except psycopg.Error as exc:
            self._error(report, "database",
                        f"bucket {iso(bucket)} refused: {refusal(conn, exc)}; nothing of it was written")
            return
        report.buckets_written.append(bucket)
        report.samples += samples
        report.pulls += pulls
        self.metrics.buckets.inc(len(samples))
        log.info("bucket %s written: %s samples, %s pull records", iso(bucket), len(samples), len(pulls))

    def _end_cycle(self, report: CycleReport) -> None:
        if report.errors:
            self.consecutive_errors += 1
        else:
            self.consecutive_errors = 0
            self.metrics.last_success.set(self.clock())
        self.metrics.consecutive.set(self.consecutive_errors)

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 10.0) -> None:
        """Cycles until ``stop`` is set, each ``interval`` seconds after the end of a bucket plus ``settle`` (so a
        bucket is read as soon as it is complete); TooManyErrors after ``max_consecutive_errors`` failed cycles."""
        while not stop.is_set():
            try:
                self.pull_once()
            except psycopg.Error as exc:  # the database went away: counted, the loop goes on
                self.metrics.errors.labels("database").inc()
                self.consecutive_errors += 1
                self.metrics.consecutive.set(self.consecutive_errors)
                log.warning("pull error (database): %s", exc)
                self.close()
            if self.consecutive_errors >= self.max_consecutive_errors:
                raise TooManyErrors(f"{self.consecutive_errors} pull cycles in a row saw an error")
            now = self.clock()
            step = max(interval, 1.0)
            next_at = (math.floor((now - self.settle) / step) + 1) * step + self.settle
            stop.wait(max(0.0, next_at - now))

    def serve_metrics(self, host: str, port: int):
        """Serve :class:`PullMetrics` on http://HOST:PORT/metrics; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.metrics.registry)
