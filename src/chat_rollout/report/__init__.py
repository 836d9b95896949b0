"""The incident report: the postmortem skeleton (Markdown) and a chart (PNG) of the metrics over the incident.

``write_report(conn, incident_id, out_dir)`` writes ``out_dir/incident-ID.md`` and ``out_dir/incident-ID.png``.

- ``load.py``: the data classes and ``load`` (the incident, its timeline and checklist, the metric samples, the
  postmortem and the rollout history), the rollout state over time (``segments``, ``kill_spans``).
- ``markdown.py``: ``render_markdown``, the playbook's section 10: title with severity, status and summary, the
  roles, the merged UTC timeline (``chat_get_v11_incident_timeline``) with the chart, the on-call checklist with
  its evidence (``chat_get_v11_incident_checklist``), the root cause, what worked and what did not, the action
  items and the rollout decision log (the history rows of the incident's span). Whatever the stored postmortem
  does not say yet is a ``TODO`` placeholder.
- ``chart.py``: ``render_chart``, the P0 and P1 metrics per cohort in their 10-second buckets with the kill switch
  and the other state changes, from 15 minutes before the timeline's first row to the close (or now);
  ``strip.py`` draws its state strip and ``placement.py`` places its labels so that none covers another, the
  legend or an axis label.

Everything is read through the reader API (revision 0008 added the metric rules, the samples of a time range and
the postmortem), so any member of ``chat_rollout_reader`` — every operator and admin — makes the report; another
login gets ``ReportPrivilegeError`` naming the grant it lacks.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from .chart import render_chart
from .load import (
    BUCKET,
    LEAD_IN,
    Change,
    IncidentReport,
    Metric,
    ReportError,
    ReportPrivilegeError,
    Segment,
    Series,
    is_event,
    kill_spans,
    load,
    segments,
)
from .markdown import ACTION_ITEM_KINDS, ROLES, render_markdown

__all__ = [
    "ACTION_ITEM_KINDS",
    "BUCKET",
    "LEAD_IN",
    "ROLES",
    "Change",
    "IncidentReport",
    "Metric",
    "ReportError",
    "ReportPrivilegeError",
    "Segment",
    "Series",
    "is_event",
    "kill_spans",
    "load",
    "render_chart",
    "render_markdown",
    "segments",
    "write_report",
]


def write_report(conn: psycopg.Connection, incident_id: int, out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/incident-ID.md and out_dir/incident-ID.png; returns their paths."""
    report = load(conn, incident_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / f"incident-{incident_id}.md"
    image = out_dir / f"incident-{incident_id}.png"
    render_chart(report, image)
    markdown.write_text(render_markdown(report, image.name), encoding="utf-8")
    return markdown, image
