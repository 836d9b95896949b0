"""Prometheus in (SPEC 7): ``chat-rollout pull`` reads the metric sources from Prometheus into the gates.

What one cycle does (:meth:`Puller.pull_once`), as an ingest login:

1. reads the sources (``chat_get_v11_metric_sources()``: PromQL per metric, cohort and sample field) and what was
   already pulled (``chat_get_v11_metric_pulls``) within the horizon;
2. computes the last complete 10-second bucket ``B`` (aligned in UTC; complete when ``B + 10 s + settle <= now``)
   and, for every source, every bucket from the one after its last pulled bucket (at most ``horizon`` back) to ``B``;
3. for each bucket and source, one instant query per field, ``GET /api/v1/query?query=EXPR&time=END`` with
   ``END = bucket_start + 10 s`` as an explicit epoch (never "now"): the expression's value at the END of the bucket,
   so a count is written as its change over the bucket, ``sum(x{cohort="canary"}) - sum(x{cohort="canary"} offset 10s)``
   (not ``increase(x[10s])``, which can lose an event scraped first in a bucket: docs/prometheus-in.md);
4. judges each answer: a vector of exactly one sample (or a scalar) is the value; an empty vector, NaN or +-Inf is
   NO sample for that (metric, cohort, bucket) -- never a zero, so the gate goes ``inconclusive``, never ``pass``;
   more than one series is an error for that source (named, counted, no sample); counts (numerator, denominator)
   are rounded to the nearest whole number, halves up (``increase()`` extrapolates to the window's edges);
5. writes each bucket in one transaction: its samples through ``chat_put_v11_metric_samples`` (the automatic kill
   happens in that transaction) and what was read through ``chat_put_v11_metric_pulls`` (the query with its time,
   the outcome, the value read, sha256 and an excerpt of the raw answer); then ``chat_run_v11_guardrails()``.

Active alerts (SPEC 7, playbook section 9 "no active P0/P1 alerts"), with ``alertmanager_url``: first in every cycle,
:meth:`Puller.pull_alerts` reads ``GET /api/v2/alerts?active=true&silenced=true&inhibited=false``, keeps the alerts
whose severity label (``alert_severity_label``, default ``severity``) is P0 or P1 (case-insensitive), silenced ones
included with ``silenced: true`` (the database decides: a silenced P0 still blocks, a silenced P1 does not), and
replaces the record through ``chat_put_v11_active_alerts``. When Alertmanager cannot be read (transport, timeout,
HTTP, not an Alertmanager answer) the error is written instead (``p_error``: the database knows the source is
unreachable, fail closed) and counted as ``chat_rollout_pull_errors_total{reason="alertmanager"}``.

Transport errors, timeouts, HTTP and malformed answers are counted (``chat_rollout_pull_errors_total{reason}``); the
cycle stops at the first transport error (Prometheus is down: the buckets stay unpulled and are backfilled by a later
cycle while they are within the horizon). :meth:`Puller.run` gives up after ``max_consecutive_errors`` cycles in a row
that saw an error. Every query is logged with the values it returned (flagger#1815).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from psycopg.types.json import Jsonb

from .connect import connect

log = logging.getLogger("chat_rollout.puller")

BUCKET = dt.timedelta(seconds=10)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
EXCERPT_CHARS = 2000
FIELDS = ("numerator", "denominator", "value")
COUNT_FIELDS = ("numerator", "denominator")
#: The reasons of chat_rollout_pull_errors_total.
REASONS = ("transport", "timeout", "http", "bad_answer", "multiple_series", "bad_value", "database", "alertmanager")
#: The severities whose active alerts are a Go/No-Go blocker (playbook section 9).
ALERT_SEVERITIES = ("P0", "P1")
ALERT_ERROR_CHARS = 2000


class PullError(Exception):
    """A query that gave no usable answer: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooManyErrors(Exception):
    """:meth:`Puller.run` gave up: ``max_consecutive_errors`` cycles in a row saw an error."""


@dataclass(frozen=True)
class Source:
    metric: str
    cohort: str
    kind: str
    exprs: dict[str, str]  # field -> PromQL


@dataclass
class Answer:
    """One field of one source for one bucket: what was asked and what came back."""

    field: str
    query: str
    query_time: dt.datetime
    outcome: str  # value, empty, nan, multiple_series
    value: float | None
    answer_sha256: str
    answer_excerpt: str


@dataclass
class CycleReport:
    """What one :meth:`Puller.pull_once` did."""

    last_complete: dt.datetime
    buckets_written: list[dt.datetime] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    pulls: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    alerts: list[dict] | None = None  # the active P0/P1 alerts written (None: no Alertmanager, or it failed)


def align(moment: dt.datetime) -> dt.datetime:
    """The start of the 10-second bucket (UTC) holding ``moment``."""
    return EPOCH + (moment - EPOCH) // BUCKET * BUCKET


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def round_count(value: float) -> int:
    """A count from a PromQL value: the nearest whole number, halves up (increase() extrapolates: 5.5 -> 6)."""
    return math.floor(value + 0.5)


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``10m``, ``1h``, ``1h30m`` or plain seconds as a timedelta; ValueError otherwise."""
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        return dt.timedelta(seconds=float(text))
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ValueError(f"{text!r} is not a duration such as 90s, 10m or 1h")
    if number or total <= 0:
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m or 1h")
    return dt.timedelta(seconds=total)


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9465`` for IPv6) as (host, port); ValueError when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT (e.g. 127.0.0.1:9465)")
    return host.strip("[]"), int(port)


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


class Puller:
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

    # --- Prometheus ---------------------------------------------------------------------------------------------

    def query(self, field_name: str, expr: str, at: dt.datetime) -> Answer:
        """One instant query of ``expr`` at the explicit time ``at``, judged (:class:`Answer`); PullError when the
        answer is unusable (transport, timeout, HTTP status, not a Prometheus answer, more than one series)."""
        epoch = at.timestamp()
        stamp = f"{epoch:.0f}" if epoch == int(epoch) else f"{epoch:.3f}"
        params = urllib.parse.urlencode({"query": expr, "time": stamp, "timeout": f"{round(self.timeout * 1000)}ms"})
        url = f"{self.prometheus_url}/api/v1/query?{params}"
        shown = f"query={expr}&time={stamp}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()[:300].decode("utf-8", "replace")
            raise PullError("http", f"{shown}: HTTP {exc.code} {body}") from None
        except TimeoutError:
            raise PullError("timeout", f"{shown}: no answer within {self.timeout} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "timeout" if isinstance(reason, TimeoutError) else "transport"
            raise PullError(kind, f"{shown}: {reason}") from None
        digest = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
            data = body["data"]
            kind, result = data["resultType"], data["result"]
            if body.get("status") != "success":
                raise ValueError(body.get("error"))
        except (ValueError, KeyError, TypeError) as exc:
            raise PullError("bad_answer", f"{shown}: not a Prometheus answer ({exc}): {text[:300]}") from None
        answer = Answer(field_name, shown, at, "empty", None, digest, text[:EXCERPT_CHARS])
        if kind == "scalar":
            samples = [result]
        elif kind == "vector":
            samples = [item["value"] for item in result]
        else:
            raise PullError("bad_answer", f"{shown}: a {kind}, not an instant vector: {text[:300]}")
        if len(samples) > 1:
            answer.outcome = "multiple_series"
            return answer
        if samples:
            value = float(samples[0][1])
            if math.isfinite(value):
                answer.outcome, answer.value = "value", value
            else:
                answer.outcome = "nan"
        return answer

    # --- Alertmanager -------------------------------------------------------------------------------------------

    def read_alerts(self) -> list[dict]:
        """The active, uninhibited P0/P1 alerts of Alertmanager (silenced ones marked), as the database stores
        them; PullError("alertmanager") when Alertmanager cannot be read or gives no Alertmanager answer."""
        params = urllib.parse.urlencode({"active": "true", "silenced": "true", "inhibited": "false"})
        url = f"{self.alertmanager_url}/api/v2/alerts?{params}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()[:300].decode("utf-8", "replace")
            raise PullError("alertmanager", f"GET {url}: HTTP {exc.code} {body}") from None
        except TimeoutError:
            raise PullError("alertmanager", f"GET {url}: no answer within {self.timeout} s") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PullError("alertmanager", f"GET {url}: {getattr(exc, 'reason', exc)}") from None
        text = raw.decode("utf-8", "replace")
        wanted = self.alert_severity_label
        alerts = []
        try:
            body = json.loads(text)
            if not isinstance(body, list):
                raise TypeError("not a list of alerts")
            for item in body:
                labels = item["labels"]
                severity = str(labels.get(wanted, "")).strip().upper()
                if severity not in ALERT_SEVERITIES:
                    continue
                status = item.get("status") or {}
                alerts.append({
                    "alertname": str(labels.get("alertname") or "(no alertname)")[:200],
                    "severity": severity,
                    "startsAt": str(item["startsAt"]),
                    "fingerprint": str(item.get("fingerprint") or "-")[:100],
                    "silenced": bool(status.get("silencedBy")),
                })
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PullError("alertmanager", f"GET {url}: not an Alertmanager answer ({exc}): {text[:300]}") from None
        alerts.sort(key=lambda a: (a["severity"], a["startsAt"], a["alertname"], a["fingerprint"]))
        return alerts[:200]

    def pull_alerts(self, report: CycleReport | None = None) -> list[dict] | None:
        """One read of Alertmanager into the database (chat_put_v11_active_alerts): the alerts written, or None
        when Alertmanager could not be read (then the error is written: the source is unreachable, fail closed)."""
        report = report if report is not None else CycleReport(self.last_complete_bucket())
        alerts: list[dict] | None
        try:
            alerts = self.read_alerts()
            error = None
        except PullError as exc:
            self._error(report, exc.reason, str(exc))
            alerts, error = None, str(exc)[:ALERT_ERROR_CHARS]
        conn = self.connection()
        try:
            with conn.transaction():
                conn.execute("select set_config('chat.actor', 'chat-rollout pull', true)")
                conn.execute("select public.chat_put_v11_active_alerts(%s, %s)",
                             (None if alerts is None else Jsonb(alerts), error))
        except psycopg.Error as exc:
            if conn.closed or isinstance(exc, psycopg.OperationalError):
                raise
            diag = exc.diag
            self._error(report, "database", f"alerts refused: {diag.sqlstate} {diag.message_primary} "
                        f"({diag.message_detail or ''})")
            return None
        report.alerts = alerts
        if alerts is not None:
            log.info("alertmanager: %s active P0/P1 alerts: %s", len(alerts),
                     ", ".join(f"{a['alertname']} ({a['severity']}{', silenced' if a['silenced'] else ''})"
                               for a in alerts) or "none")
        return alerts

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

    def judge(self, source: Source, bucket: dt.datetime, answers: list[Answer], report: CycleReport) -> dict | None:
        """The sample of ``source`` for ``bucket`` from its answers, or None (no sample: empty, NaN, an error)."""
        name = f"{source.metric}/{source.cohort} at {iso(bucket)}"
        if any(a.outcome == "multiple_series" for a in answers):
            fields = ", ".join(a.field for a in answers if a.outcome == "multiple_series")
            self._error(report, "multiple_series", f"{name}: {fields} answered more than one series; the source must "
                        "aggregate to one (sum(...)); no sample")
            return None
        missing = [f"{a.field} {a.outcome}" for a in answers if a.outcome != "value"]
        if missing:
            log.info("%s: no sample (%s): the gate sees no data for this bucket", name, ", ".join(missing))
            return None
        sample: dict = {"metric": source.metric, "cohort": source.cohort, "bucket_start": iso(bucket)}
        for a in answers:
            assert a.value is not None
            if a.field in COUNT_FIELDS:
                count = round_count(a.value)
                if count < 0:
                    self._error(report, "bad_value", f"{name}: {a.field} {a.value} is negative; no sample")
                    return None
                sample[a.field] = count
            elif not 0 <= a.value <= 1e12:
                self._error(report, "bad_value", f"{name}: value {a.value} is not between 0 and 1e12; no sample")
                return None
            else:
                sample[a.field] = a.value
        if sample.get("denominator") is not None and sample["numerator"] > sample["denominator"]:
            self._error(report, "bad_value", f"{name}: numerator {sample['numerator']} > denominator "
                        f"{sample['denominator']}; no sample")
            return None
        return sample

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
            if conn.closed or isinstance(exc, psycopg.OperationalError):
                raise
            diag = exc.diag
            self._error(report, "database", f"bucket {iso(bucket)} refused: {diag.sqlstate} {diag.message_primary} "
                        f"({diag.message_detail or ''}); nothing of it was written")
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
