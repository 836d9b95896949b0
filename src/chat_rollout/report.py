"""The incident report: the postmortem skeleton (Markdown) and a chart (PNG) of the metrics over the incident.

``write_report(conn, incident_id, out_dir)`` writes ``out_dir/incident-ID.md`` and ``out_dir/incident-ID.png``.

The Markdown follows the playbook's section 10: title with severity, status and summary, the roles, the merged
UTC timeline (``chat_get_v11_incident_timeline``) with the chart, the on-call checklist with its evidence
(``chat_get_v11_incident_checklist``), the root cause (technical and process), what worked and what did not, the
action items (test / alert / guardrail, owner, deadline) and the rollout decision log (the history rows of the
incident's span). Whatever the stored postmortem does not say yet is a ``TODO`` placeholder.

The chart has a time axis from 15 minutes before the timeline's first row (which itself starts 15 minutes before
the declaration or the guardrail's evidence) to the close (or now). It plots, per cohort, the P0 metrics and,
below, the P1 metrics of ``chat_v11.metric_sample`` in their 10-second buckets (rates = numerator / denominator,
counts as counts, latencies as values), with the state changes of the rollout history: the kill switch ON as
a red span (widened to stay visible when it lasted seconds) and every other action as a labelled line. A strip
under them shows stage, freeze and kill switch, zoomed in on the state changes when they cluster.

The metric samples, the postmortem and the raw history are read from the ``chat_v11`` tables, which grant
nothing to anyone (SPEC 4): run the report as the owner of ``chat_v11`` (the role that ran the migrations) or
as a superuser, like a DBA. Without those privileges it raises ``ReportPrivilegeError`` saying what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

LEAD_IN = timedelta(minutes=15)
BUCKET = timedelta(seconds=10)
ROLES = ("IC", "backend", "SRE", "frontend", "scribe")
ACTION_ITEM_KINDS = ("test", "alert", "guardrail")

# the chat_v11 objects the report reads directly (the rest comes through the public API)
_OWNER_TABLES = ("chat_v11.metric", "chat_v11.metric_sample", "chat_v11.incident", "chat_v11.rollout_history")


class ReportError(RuntimeError):
    """The report cannot be made; the message says why."""


class ReportPrivilegeError(ReportError):
    """The caller lacks the privileges to read the chat_v11 tables."""


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


def _missing_privileges(conn: psycopg.Connection) -> list[str]:
    missing = []
    if not conn.execute("select has_schema_privilege('chat_v11', 'USAGE')").fetchone()[0]:
        return ["USAGE on schema chat_v11"]
    for table in _OWNER_TABLES:
        if not conn.execute("select has_table_privilege(%s, 'SELECT')", (table,)).fetchone()[0]:
            missing.append(f"SELECT on {table}")
    return missing


def _privilege_error(conn: psycopg.Connection, missing: Sequence[str]) -> ReportPrivilegeError:
    user = conn.execute("select current_user").fetchone()[0]
    return ReportPrivilegeError(
        f"the report reads the metric samples, the postmortem and the history from the chat_v11 tables, "
        f"and role {user} lacks {', '.join(missing)}. Those tables grant nothing to anyone: run the report as the "
        f"owner of schema chat_v11 (the role that ran the migrations) or as a superuser, e.g. with DATABASE_URL "
        f"naming that role."
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
    missing = _missing_privileges(conn)
    if missing:
        raise _privilege_error(conn, missing)
    try:
        now = cur.execute("select clock_timestamp() as now").fetchone()["now"]
        postmortem = cur.execute(
            "select postmortem from chat_v11.incident where incident_id = %s", (incident_id,)
        ).fetchone()["postmortem"]
        end = incident["closed_at"] or now
        timeline_start = min((row["at"] for row in timeline), default=incident["opened_at"])
        chart_start = timeline_start - LEAD_IN
        columns = (
            "version, changed_at, changed_by, actor, action, from_stage, to_stage, to_kill_switch, "
            "promotion_frozen, reason, note, incident_id"
        )
        changes = [
            _change(row)
            for row in cur.execute(
                f"select {columns} from chat_v11.rollout_history where changed_at between %s and %s order by version",
                (chart_start, end),
            )
        ]
        before = cur.execute(
            f"select {columns} from chat_v11.rollout_history where changed_at < %s order by version desc limit 1",
            (chart_start,),
        ).fetchone()
        metrics = {
            row["metric"]: Metric(
                row["metric"],
                row["kind"],
                row["severity"],
                row["rule"],
                float(row["threshold"]) if row["threshold"] is not None else None,
            )
            for row in cur.execute(
                "select metric, kind, severity, rule, threshold from chat_v11.metric order by ordinal"
            )
        }
        samples = cur.execute(
            "select metric, cohort, bucket_start, numerator, denominator, value from chat_v11.metric_sample "
            "where bucket_start between %s and %s order by metric, cohort, bucket_start",
            (chart_start - BUCKET, end),
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _privilege_error(conn, [exc.diag.message_primary or str(exc)]) from exc
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
    spans: list[tuple[datetime, datetime]] = []
    for segment in segments(report):
        if not segment.kill_switch:
            continue
        if spans and spans[-1][1] == segment.start:
            spans[-1] = (spans[-1][0], segment.end)
        else:
            spans.append((segment.start, segment.end))
    return spans


# --- Markdown ------------------------------------------------------------------------------------


def _ts(moment: datetime | None, *, date: bool = True) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>") or " "


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _items(value: Any) -> list[str]:
    """A postmortem field as a list of strings (a string, an array of strings or objects)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item if isinstance(item, str) else _compact(item) for item in value]
    return [value if isinstance(value, str) else _compact(value)]


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)


def _roles(timeline: Sequence[dict]) -> dict[str, str]:
    """The latest person named for each role (timeline entries of kind role, body 'ROLE: person')."""
    roles: dict[str, str] = {}
    for row in timeline:
        if row["source"] == "incident" and row["kind"] == "role" and ": " in row["body"]:
            role, person = row["body"].split(": ", 1)
            roles[role] = person
    return roles


_CHECK_MARK = {"done": "✅ done", "not done": "❌ not done", "n/a": "➖ n/a", "overdue": "⚠️ overdue"}


def render_markdown(report: IncidentReport, image_name: str) -> str:
    i = report.incident
    pm = report.postmortem or {}
    n = report.incident_id
    todo = "TODO"
    lines = [
        f"# Incident {n} — {i['severity']}, {i['status']}: {i['summary']}",
        "",
        f"> Postmortem skeleton (playbook section 10), generated by `chat-rollout report {n}` at "
        f"{_ts(report.generated_at)} UTC from the database. "
        + (
            "The root cause, what worked and the action items come from the stored postmortem."
            if report.postmortem
            else f"Fill in every {todo}, then store it with `chat-rollout incident postmortem {n} FILE.json`."
        ),
        "",
    ]
    lines += _table(
        ("", ""),
        [
            ("severity", i["severity"]),
            ("status", i["status"]),
            ("summary", i["summary"]),
            ("declared", f"{_ts(i['opened_at'])} UTC by {i['opened_by']}"),
            ("mitigated", f"{_ts(i['mitigated_at'])} UTC" if i["mitigated_at"] else "–"),
            ("resolved", f"{_ts(i['resolved_at'])} UTC" if i["resolved_at"] else "–"),
            ("closed", f"{_ts(i['closed_at'])} UTC" if i["closed_at"] else "– (the report runs to now)"),
            ("duration", _duration(report.end - i["opened_at"])),
        ],
    )

    roles = _roles(report.timeline)
    lines += ["", "## Roles", ""]
    lines += _table(("role", "person"), [(role, roles.get(role, f"{todo}: not named")) for role in ROLES])

    lines += ["", "## 1. Timeline (UTC)", "", f"![P0 and P1 metrics over incident {n}]({image_name})", ""]
    lines.append(
        f"*The P0 and P1 metrics per cohort in 10-second buckets from {_ts(report.chart_start)} to "
        f"{_ts(report.end)} UTC; the kill switch ON is shaded red, the other rollout actions are labelled lines.*"
    )
    lines.append("")
    lines += _table(
        ("time (UTC)", "source", "kind", "who", "what"),
        [(_ts(row["at"]), row["source"], row["kind"], row["who"], row["body"]) for row in report.timeline],
    )
    narrative = _items(pm.get("timeline"))
    if narrative:
        lines += ["", "The postmortem's own account:", ""]
        lines += [f"- {item}" for item in narrative]

    lines += ["", "## On-call checklist (playbook section 11)", ""]
    lines += _table(
        ("#", "item", "status", "evidence"),
        [
            (row["item"], row["title"], _CHECK_MARK.get(row["status"], row["status"]), row["evidence"])
            for row in report.checklist
        ],
    )

    root_causes = [row for row in report.timeline if row["source"] == "incident" and row["kind"] == "root_cause"]
    rca = pm.get("root_cause") or {}
    lines += ["", "## 2. Root cause (RCA)", "", "### Technical", ""]
    lines.append(rca.get("technical") or f"{todo}: the technical cause, by layer (commit path, receipt emission, …).")
    if root_causes:
        lines += ["", "Localized in the timeline:", ""]
        lines += [f"- {_ts(row['at'], date=False)} UTC, {row['who']}: {row['body']}" for row in root_causes]
    lines += ["", "### Process", ""]
    lines.append(rca.get("process") or f"{todo}: why the process let it through (tests, review, rollout, alerts).")

    lines += ["", "## 3. What worked / what did not", "", "### What worked", ""]
    lines += [f"- {item}" for item in _items(pm.get("what_worked"))] or [f"- {todo}"]
    lines += ["", "### What did not work", ""]
    lines += [f"- {item}" for item in _items(pm.get("what_did_not_work"))] or [f"- {todo}"]

    lines += ["", "## 4. Permanent fixes (action items)", ""]
    items = [item for item in pm.get("action_items") or [] if isinstance(item, dict)]
    rows = [(item.get("kind"), item.get("title"), item.get("owner"), item.get("deadline")) for item in items]
    present = {row[0] for row in rows}
    rows += [
        (kind, f"{todo}: the {kind}", f"{todo}: owner", f"{todo}: YYYY-MM-DD")
        for kind in ACTION_ITEM_KINDS
        if kind not in present
    ]
    lines += _table(("kind", "title", "owner", "deadline"), rows)

    lines += ["", "## 5. Rollout decision log", ""]
    log = report.decision_log
    if log:
        lines += _table(
            ("version", "time (UTC)", "action", "stage", "kill switch", "frozen", "by", "reason"),
            [
                (
                    c.version,
                    _ts(c.at),
                    c.action,
                    f"{c.from_stage or '–'} → {c.to_stage}",
                    "ON" if c.kill_switch else "off",
                    "yes" if c.frozen else "no",
                    c.who,
                    c.reason + (f" (note: {c.note})" if c.note else ""),
                )
                for c in log
            ],
        )
    else:
        lines.append("No rollout state change in the incident's span.")
    decisions = [row for row in report.timeline if row["source"] == "incident" and row["kind"] == "decision"]
    if decisions:
        lines += ["", "The IC's decisions:", ""]
        lines += [f"- {_ts(row['at'], date=False)} UTC, {row['who']}: {row['body']}" for row in decisions]
    stored = _items(pm.get("decision_log"))
    if stored:
        lines += ["", "The postmortem's decision log:", ""]
        lines += [f"- {item}" for item in stored]
    elif not report.postmortem:
        lines += ["", f"- {todo}: why each rollout decision was taken, and what would have changed it."]
    lines.append("")
    return "\n".join(lines)


def _duration(delta: timedelta) -> str:
    if delta < timedelta(seconds=10):
        return f"{max(0.0, delta.total_seconds()):.1f} s"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{hours} h " if hours else "") + (f"{minutes} min " if hours or minutes else "") + f"{seconds} s"


# --- the chart -----------------------------------------------------------------------------------

_ACTION_COLOUR = {
    "kill": "#c0392b",
    "auto_kill": "#c0392b",
    "resume": "#1e8449",
    "hold": "#d68910",
    "unfreeze": "#2471a3",
    "promote": "#7d3c98",
    "rollback": "#6e2c00",
    "init": "#7f8c8d",
}
# tab10 without its red (red means the kill switch and P0 events), plus navy: one colour per default metric
_METRIC_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#bcbd22",
    "#7f7f7f",
    "#000080",
]


def render_chart(report: IncidentReport, path: Path) -> None:
    """Write the PNG (matplotlib's Agg canvas: no display, no pyplot state)."""
    import matplotlib

    matplotlib.use("Agg")  # harmless when already Agg; the Figure below never needs a display
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    span = report.end - report.chart_start
    right = report.end + max(span * 0.05, timedelta(seconds=5))
    x0, x1 = mdates.date2num(report.chart_start), mdates.date2num(right)

    fig = Figure(figsize=(14, 10), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        3, 1, height_ratios=[3.2, 2.2, 1.6], hspace=0.5, left=0.07, right=0.70, top=0.9, bottom=0.05
    )
    ax_p0 = fig.add_subplot(grid[0])
    ax_p1 = fig.add_subplot(grid[1], sharex=ax_p0)
    ax_strip = fig.add_subplot(grid[2])
    i = report.incident
    fig.suptitle(
        f"Incident {report.incident_id} — {i['severity']}, {i['status']}: {_shorten(i['summary'], 80)}",
        x=0.07,
        ha="left",
        fontsize=14,
        fontweight="bold",
    )
    fig.text(
        0.07,
        0.925,
        f"{_ts(report.chart_start)} → {_ts(report.end)} UTC · per cohort, 10-second buckets "
        "(canary solid, control dashed) · kill switch ON shaded red",
        fontsize=9.5,
        color="#444444",
    )

    spans = kill_spans(report)
    changes = [c for c in report.changes if c.at >= report.chart_start]
    _mark_changes(ax_p0, ax_p1, spans, changes, x0, x1, mdates)
    metric_colour: dict[str, str] = {}
    for severity, ax in (("P0", ax_p0), ("P1", ax_p1)):
        _plot_metrics(report, severity, ax, metric_colour, mdates)
        ax.set_xlim(x0, x1)
        ax.grid(True, color="#dddddd", lw=0.6)
    ax_p0.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, minticks=6, maxticks=14))
    ax_p0.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    ax_p1.set_xlabel("time (UTC)")
    _label_changes(ax_p0, spans, changes, x0, x1, mdates)
    _draw_strip(report, ax_strip, changes, spans, x0, x1, mdates)

    # the legend, right of the axes
    handles = [Line2D([], [], color=colour, lw=2, label=metric) for metric, colour in metric_colour.items()]
    handles += [
        Line2D([], [], color="#333333", lw=1.8, ls="-", label="canary (v1.1)"),
        Line2D([], [], color="#333333", lw=1.4, ls="--", label="control"),
    ]
    if any(is_event(s.metric, v) for s in report.series for v in s.values):
        handles.append(Line2D([], [], color="#c0392b", marker="v", ls="none", ms=8, label="P0 event (rule broken)"))
    if spans:
        handles.append(Patch(color="#e74c3c", alpha=0.35, label="kill switch ON"))
    if any(segment.frozen for segment in segments(report)):
        handles.append(Patch(color="#f5b041", label="promotion frozen"))
    for action in dict.fromkeys(c.action for c in changes):
        killing = action in ("kill", "auto_kill")
        handles.append(
            Line2D(
                [],
                [],
                color=_ACTION_COLOUR.get(action, "#555555"),
                lw=2.4 if killing else 1.6,
                ls="-" if killing else (0, (4, 2)),
                label=f"rollout: {action}",
            )
        )
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.775, 0.9), fontsize=9, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mark_changes(ax_p0, ax_p1, spans, changes, x0, x1, mdates) -> None:
    """The kill switch ON as a red span (at least 1.2 % of the axis wide) and a line per state change."""
    min_width = (x1 - x0) * 0.012  # a kill span of a few seconds still shows on an hour's axis
    for ax in (ax_p0, ax_p1):
        for start, end in spans:
            a, b = mdates.date2num(start), mdates.date2num(end)
            ax.axvspan(a, max(b, a + min_width), color="#e74c3c", alpha=0.25, lw=0, zorder=0)
        for change in changes:
            killing = change.action in ("kill", "auto_kill")
            ax.axvline(
                mdates.date2num(change.at),
                color=_ACTION_COLOUR.get(change.action, "#555555"),
                lw=2.4 if killing else 1.4,
                ls="-" if killing else (0, (4, 2)),
                alpha=0.9,
                zorder=1,
            )


def _plot_metrics(report, severity, ax, metric_colour, mdates) -> None:
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    series = [s for s in report.series if s.metric.severity == severity]
    rates = [s for s in series if s.metric.kind == "rate"]
    others = [s for s in series if s.metric.kind != "rate"]
    twin = ax.twinx() if others else None
    ax.set_title(
        f"{severity} metrics" + (" (rates left; counts / latency right)" if rates and others else ""),
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    if not series:
        ax.text(
            0.5,
            0.5,
            f"no {severity} samples between {_ts(report.chart_start)} and {_ts(report.end)} UTC",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#777777",
            fontsize=10,
        )
        ax.set_yticks([])
        return
    for s in series:
        colour = metric_colour.setdefault(s.metric.name, _METRIC_COLOURS[len(metric_colour) % len(_METRIC_COLOURS)])
        target = ax if s.metric.kind == "rate" else twin
        canary = s.cohort == "canary"
        target.plot(
            mdates.date2num(s.times),
            [math.nan if v is None else v for v in s.values],
            color=colour,
            lw=1.8 if canary else 1.3,
            ls="-" if canary else "--",
            alpha=0.95 if canary else 0.75,
            zorder=3 if canary else 2,
        )
    # the P0 events: a marker on every bucket that breaks its rule, the largest one named
    events = [
        (s, t, v, label)
        for s in series
        for t, v, label in zip(s.times, s.values, s.labels, strict=True)
        if is_event(s.metric, v)
    ]
    for s, t, v, _ in events:
        target = ax if s.metric.kind == "rate" else twin
        target.plot(mdates.date2num(t), v, marker="v", color="#c0392b", ms=9, zorder=5, ls="none")
    if events:
        s, t, v, label = max(events, key=lambda e: (e[0].metric.kind == "rate", e[2]))
        target = ax if s.metric.kind == "rate" else twin
        shown = f"{v:.2%} ({label})" if s.metric.kind == "rate" else label
        target.annotate(
            f"P0 spike: {s.metric.name}\n{s.cohort} {shown} at {_ts(t, date=False)} UTC",
            xy=(mdates.date2num(t), v),
            xytext=(25, -10),
            textcoords="offset points",
            fontsize=9.5,
            color="#922b21",
            fontweight="bold",
            va="top",
            arrowprops={"arrowstyle": "->", "color": "#922b21", "lw": 1.2},
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#922b21", "alpha": 0.9},
            zorder=6,
        )
    if rates:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.set_ylabel("rate per 10 s bucket")
        top = max((v for s in rates for v in s.values if v is not None), default=0.0)
        ax.set_ylim(0, top * 1.35 if top > 0 else 0.01)
    else:
        ax.set_yticks([])
    if twin is not None:
        kinds = {s.metric.kind for s in others}
        twin.set_ylabel(
            " / ".join(label for kind, label in (("count", "count per 10 s"), ("latency_ms", "ms")) if kind in kinds)
        )
        if kinds == {"count"}:
            twin.yaxis.set_major_locator(MaxNLocator(integer=True))
        top = max((v for s in others for v in s.values if v is not None), default=0.0)
        twin.set_ylim(0, top * 1.35 if top > 0 else 1)


def _label_changes(ax, spans, changes: Sequence[Change], x0: float, x1: float, mdates) -> None:
    """Name each state change at the top of the P0 panel (close ones stacked) and each kill span at its foot."""
    close = (x1 - x0) * 0.06
    last_x, level = -math.inf, 0
    for change in changes:
        x = mdates.date2num(change.at)
        level = level + 1 if x - last_x < close else 0
        last_x = x
        ax.annotate(
            change.action + (" (kill switch ON)" if change.action in ("kill", "auto_kill") else ""),
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-5, -6 - 13 * level),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8.5,
            fontweight="bold",
            color=_ACTION_COLOUR.get(change.action, "#555555"),
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=7,
        )
    for start, end in spans:
        ax.annotate(
            f"KILL SWITCH ON\n{_ts(start, date=False)} → {_ts(end, date=False)} UTC ({_duration(end - start)})",
            xy=(mdates.date2num(start), 0.08),
            xycoords=("data", "axes fraction"),
            xytext=(-8, 0),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
            fontweight="bold",
            color="#c0392b",
            bbox={"boxstyle": "round,pad=0.3", "fc": "#fdedec", "ec": "#c0392b"},
            zorder=7,
        )


def _draw_strip(report, ax, changes, spans, x0, x1, mdates) -> None:
    """Stage, freeze and kill switch over time; zoomed in on the state changes when they cluster."""
    from matplotlib.ticker import FuncFormatter

    lo, hi, zoomed = x0, x1, False
    # zoom on the incident's own changes (rows that name it; all changes when none does) when they cluster
    focus = [c for c in changes if c.incident_id == report.incident_id] or list(changes)
    if focus:
        c0, c1 = mdates.date2num(focus[0].at), mdates.date2num(focus[-1].at)
        end = mdates.date2num(report.end)
        if end > c1 and end - c1 < max(c1 - c0, (x1 - x0) * 0.02):
            c1 = end  # the close (or now) is near: show it too
        if 0 < c1 - c0 < (x1 - x0) * 0.08:
            pad = max((c1 - c0) * 0.12, 0.05 / 86400)
            lo, hi, zoomed = max(x0, c0 - pad), min(x1, c1 + pad), True
    width = hi - lo
    rows = {"kill switch": 0, "frozen": 1, "stage": 2}
    for segment in segments(report):
        a, b = mdates.date2num(segment.start), mdates.date2num(segment.end)
        ax.broken_barh([(a, b - a)], (rows["stage"] - 0.35, 0.7), color="#d5dbdb", lw=0.8, ec="white")
        visible = min(b, hi) - max(a, lo)
        if visible > width * 0.07:
            ax.text(max(a, lo) + width * 0.005, rows["stage"], segment.stage, va="center", fontsize=8.5, clip_on=True)
        if segment.frozen:
            ax.broken_barh([(a, b - a)], (rows["frozen"] - 0.35, 0.7), color="#f5b041")
        if segment.kill_switch:
            ax.broken_barh([(a, b - a)], (rows["kill switch"] - 0.35, 0.7), color="#e74c3c")
    for start, end in spans:
        a, b = mdates.date2num(start), mdates.date2num(end)
        if b > lo and a < hi:
            inside = min(b, hi) - max(a, lo) > width * 0.12
            ax.text(
                (max(a, lo) + min(b, hi)) / 2 if inside else min(b, hi) + width * 0.005,
                rows["kill switch"],
                f"ON {_duration(end - start)}",
                ha="center" if inside else "left",
                va="center",
                fontsize=8.5,
                color="white" if inside else "#c0392b",
                fontweight="bold",
                clip_on=True,
            )
    last_x, level = -math.inf, 0
    for change in changes:
        x = mdates.date2num(change.at)
        if not lo <= x <= hi:
            continue
        colour = _ACTION_COLOUR.get(change.action, "#555555")
        ax.axvline(x, color=colour, lw=1.2, ls=":", zorder=3)
        level = level + 1 if x - last_x < width * 0.15 else 0
        last_x = x
        ax.text(
            x + width * 0.004,
            2.55 + 0.38 * (level % 3),
            f"v{change.version} {change.action}",
            fontsize=8,
            color=colour,
            fontweight="bold",
            va="bottom",
            clip_on=True,
        )
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.6, 3.8)
    ax.set_yticks(list(rows.values()), list(rows))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10))
    seconds = width * 86400

    def clock(x: float) -> str:
        moment = mdates.num2date(x, tz=UTC)
        if seconds < 10:
            return moment.strftime("%H:%M:%S.%f")[:-3]
        return moment.strftime("%H:%M:%S" if seconds < 600 else "%H:%M")

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.grid(True, axis="x", color="#dddddd", lw=0.6)
    title = "Rollout state (history)"
    if zoomed:
        title += f", zoomed in on the incident's state changes: {clock(lo)} – {clock(hi)} UTC"
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")


# --- both files ----------------------------------------------------------------------------------


def write_report(conn: psycopg.Connection, incident_id: int, out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/incident-ID.md and out_dir/incident-ID.png; returns their paths."""
    report = load(conn, incident_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / f"incident-{incident_id}.md"
    image = out_dir / f"incident-{incident_id}.png"
    render_chart(report, image)
    markdown.write_text(render_markdown(report, image.name), encoding="utf-8")
    return markdown, image
