"""The report's data: the classes, the loading from the database, and the rollout state over time.

``load(conn, incident_id)`` reads everything through the reader API (revision 0008): the incident, its timeline and
checklist, its postmortem, the rollout history, the metric rules and the samples of the chart's span. Any member of
``chat_rollout_reader`` (so every operator and admin) can make the report; another login gets
``ReportPrivilegeError`` naming the grant it lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

LEAD_IN = timedelta(minutes=15)  # the chart starts this long before the timeline's first row
BUCKET = timedelta(seconds=10)

# the history is short (one row per state change): the report reads it whole and keeps the chart's span
_HISTORY_ROWS = 2_147_483_647


class ReportError(RuntimeError):
    """The report cannot be made; the message says why."""


class ReportPrivilegeError(ReportError):
    """The caller is not a member of chat_rollout_reader."""


@dataclass
class Change:
    """One rollout history row (a state change)."""

    version: int
    at: datetime
    action: str
    from_stage: str | None
    to_stage: str
    kill_switch: bool
    frozen: bool
    changed_by: str
    actor: str | None
    reason: str
    note: str | None = None
    incident_id: int | None = None

    @property
    def who(self) -> str:
        return f"{self.actor} ({self.changed_by})" if self.actor else self.changed_by


@dataclass
class Metric:
    name: str
    kind: str
    severity: str
    rule: str
    threshold: float | None


@dataclass
class Series:
    """One metric and cohort in 10-second buckets: times and values (None where no bucket was reported)."""

    metric: Metric
    cohort: str
    times: list[datetime] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # "3/200" for rates, for annotations


@dataclass
class IncidentReport:
    """Everything the Markdown and the chart are made of."""

    incident: dict
    timeline: list[dict]
    checklist: list[dict]
    postmortem: dict | None
    changes: list[Change]  # history rows from the chart's start to its end, oldest first
    state_before: Change | None  # the history row in force at the chart's start
    series: list[Series]
    chart_start: datetime
    timeline_start: datetime
    end: datetime
    generated_at: datetime

    @property
    def incident_id(self) -> int:
        return int(self.incident["incident_id"])

    @property
    def decision_log(self) -> list[Change]:
        """The history rows of the incident's span (the timeline's first row to the close, or now)."""
        return [c for c in self.changes if self.timeline_start <= c.at <= self.end]


# --- loading -------------------------------------------------------------------------------------


def _privilege_error(conn: psycopg.Connection, exc: psycopg.Error) -> ReportPrivilegeError:
    if not conn.autocommit:
        conn.rollback()
    user = conn.execute("select current_user").fetchone()[0]
    return ReportPrivilegeError(
        f"the report reads through the reader API, and role {user} may not call it "
        f"({exc.diag.message_primary or exc}). Grant it the reader role: grant chat_rollout_reader to {user}; "
        f"(every operator and admin has it)."
    )


def _change(row: dict) -> Change:
    return Change(
        version=row["version"],
        at=row["changed_at"],
        action=row["action"],
        from_stage=row["from_stage"],
        to_stage=row["to_stage"],
        kill_switch=row["to_kill_switch"],
        frozen=row["promotion_frozen"],
        changed_by=row["changed_by"],
        actor=row["actor"],
        reason=row["reason"],
        note=row.get("note"),
        incident_id=row.get("incident_id"),
    )


def load(conn: psycopg.Connection, incident_id: int) -> IncidentReport:
    """Read everything the report shows. Unknown incident: the timeline function's RO030 (a psycopg error)."""
    conn.execute("select set_config('TimeZone', 'UTC', false)")
    cur = conn.cursor(row_factory=dict_row)
    try:
        timeline = cur.execute(
            "select at, source, kind, who, body from public.chat_get_v11_incident_timeline(%s)", (incident_id,)
        ).fetchall()
        incident = cur.execute(
            "select * from public.chat_get_v11_incidents() where incident_id = %s", (incident_id,)
        ).fetchone()
        if incident is None:  # the timeline refused an unknown id already; this is a race with nothing to show
            raise ReportError(f"incident {incident_id} is not visible")
        checklist = cur.execute(
            "select item, title, status, evidence from public.chat_get_v11_incident_checklist(%s) order by item",
            (incident_id,),
        ).fetchall()
        now = cur.execute("select clock_timestamp() as now").fetchone()["now"]
        postmortem = cur.execute("select public.chat_get_v11_postmortem(%s) as p", (incident_id,)).fetchone()["p"]
        end = incident["closed_at"] or now
        timeline_start = min((row["at"] for row in timeline), default=incident["opened_at"])
        chart_start = timeline_start - LEAD_IN
        history = cur.execute(
            "select version, changed_at, changed_by, actor, action, from_stage, to_stage, to_kill_switch, "
            "promotion_frozen, reason, note, incident_id from public.chat_get_v11_rollout_history(%s) "
            "where changed_at <= %s order by version",
            (_HISTORY_ROWS, end),
        ).fetchall()
        changes = [_change(row) for row in history if row["changed_at"] >= chart_start]
        before = next((row for row in reversed(history) if row["changed_at"] < chart_start), None)
        metrics = {
            row["metric"]: Metric(
                row["metric"],
                row["kind"],
                row["severity"],
                row["rule"],
                float(row["threshold"]) if row["threshold"] is not None else None,
            )
            for row in cur.execute(
                "select metric, kind, severity, rule, threshold from public.chat_get_v11_metric_rules()"
            )
        }
        samples, start = [], chart_start - BUCKET
        while start <= end:  # the API answers at most 31 days per call; both ends are included
            stop = min(end, start + timedelta(days=31))
            samples += cur.execute(
                "select metric, cohort, bucket_start, numerator, denominator, value "
                "from public.chat_get_v11_metric_samples(%s, %s)",
                (start, stop),
            ).fetchall()
            start = stop + timedelta(microseconds=1)
        samples.sort(key=lambda row: (row["metric"], row["cohort"], row["bucket_start"]))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _privilege_error(conn, exc) from exc
    return IncidentReport(
        incident=incident,
        timeline=timeline,
        checklist=checklist,
        postmortem=postmortem,
        changes=changes,
        state_before=_change(before) if before else None,
        series=_series(metrics, samples),
        chart_start=chart_start,
        timeline_start=timeline_start,
        end=end,
        generated_at=now,
    )


def _series(metrics: dict[str, Metric], samples: Iterable[dict]) -> list[Series]:
    """Per metric (catalog order) and cohort, the bucket values on a 10-second grid with gaps as None."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for sample in samples:
        grouped.setdefault((sample["metric"], sample["cohort"]), []).append(sample)
    order = list(metrics)
    out = []
    for (name, cohort), rows in sorted(grouped.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        metric = metrics[name]
        series = Series(metric, cohort)
        expected = rows[0]["bucket_start"]
        for row in rows:
            while expected < row["bucket_start"]:  # a gap: no bucket reported
                series.times.append(expected)
                series.values.append(None)
                series.labels.append("")
                expected += BUCKET
            value, label = _value(metric, row)
            series.times.append(row["bucket_start"])
            series.values.append(value)
            series.labels.append(label)
            expected = row["bucket_start"] + BUCKET
        out.append(series)
    return out


def _value(metric: Metric, row: dict) -> tuple[float | None, str]:
    if metric.kind == "rate":
        if not row["denominator"]:
            return None, f"{row['numerator']}/0"
        return row["numerator"] / row["denominator"], f"{row['numerator']}/{row['denominator']}"
    if metric.kind == "count":
        return (None, "") if row["numerator"] is None else (float(row["numerator"]), str(row["numerator"]))
    return (None, "") if row["value"] is None else (float(row["value"]), f"{row['value']:g} ms")


def is_event(metric: Metric, value: float | None) -> bool:
    """A P0 bucket that breaks its rule: any event for the exactly-zero rules, above the threshold otherwise."""
    if value is None or metric.severity != "P0":
        return False
    if metric.rule == "threshold" and metric.threshold is not None:
        return value > metric.threshold
    return value > 0


# --- states over time ----------------------------------------------------------------------------


@dataclass
class Segment:
    start: datetime
    end: datetime
    stage: str
    kill_switch: bool
    frozen: bool


def segments(report: IncidentReport) -> list[Segment]:
    """The rollout state over [chart_start, end], one segment per state in force."""
    before = report.state_before
    stage, kill, frozen = (before.to_stage, before.kill_switch, before.frozen) if before else ("off", False, False)
    out: list[Segment] = []
    at = report.chart_start
    for change in report.changes:
        if change.at > at:
            out.append(Segment(at, change.at, stage, kill, frozen))
        at = max(at, change.at)
        stage, kill, frozen = change.to_stage, change.kill_switch, change.frozen
    if report.end > at:
        out.append(Segment(at, report.end, stage, kill, frozen))
    return out


def kill_spans(report: IncidentReport) -> list[tuple[datetime, datetime]]:
    """The spans with the kill switch ON (adjacent segments merged), oldest first."""
    spans: list[tuple[datetime, datetime]] = []
    for segment in segments(report):
        if not segment.kill_switch:
            continue
        if spans and spans[-1][1] == segment.start:
            spans[-1] = (spans[-1][0], segment.end)
        else:
            spans.append((segment.start, segment.end))
    return spans


def duration(delta: timedelta) -> str:
    """A span for people: "0.6 s" under ten seconds, else "1 h 2 min 3 s"."""
    if delta < timedelta(seconds=10):
        return f"{max(0.0, delta.total_seconds()):.1f} s"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{hours} h " if hours else "") + (f"{minutes} min " if hours or minutes else "") + f"{seconds} s"
