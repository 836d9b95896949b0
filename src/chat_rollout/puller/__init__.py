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

from .alerts import AlertmanagerRead
from .common import (
    ALERT_ERROR_CHARS,
    ALERT_SEVERITIES,
    BUCKET,
    COUNT_FIELDS,
    EPOCH,
    EXCERPT_CHARS,
    FIELDS,
    REASONS,
    Answer,
    CycleReport,
    PullError,
    Source,
    TooManyErrors,
    align,
    iso,
    log,
    parse_duration,
    parse_listen,
    round_count,
)
from .cycle import Puller
from .metrics import PullMetrics
from .promql import PrometheusQueries

__all__ = [
    "ALERT_ERROR_CHARS",
    "ALERT_SEVERITIES",
    "BUCKET",
    "COUNT_FIELDS",
    "EPOCH",
    "EXCERPT_CHARS",
    "FIELDS",
    "REASONS",
    "AlertmanagerRead",
    "Answer",
    "CycleReport",
    "PrometheusQueries",
    "PullError",
    "PullMetrics",
    "Puller",
    "Source",
    "TooManyErrors",
    "align",
    "iso",
    "log",
    "parse_duration",
    "parse_listen",
    "round_count",
]
