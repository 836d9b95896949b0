"""The chart (PNG) of the metrics over the incident, on matplotlib's Agg canvas (no display, no pyplot state).

A time axis from 15 minutes before the timeline's first row to the close (or now). Per cohort, the P0 metrics
and, below, the P1 metrics of ``chat_v11.metric_sample`` in their 10-second buckets (rates = numerator /
denominator, counts as counts, latencies as values), with the state changes of the rollout history: the kill
switch ON as a red span (widened to stay visible when it lasted seconds) and every other action as a labelled
line. A strip under them shows stage, freeze and kill switch (``strip.py``).

The layout is fixed (1400 × 1000 px): the title is wrapped to the figure's width and the panels start under it,
the legend has its own column right of the panels, and every label inside a panel is placed by measuring it
(``placement.py``) so that it stays inside its panel and covers neither another label nor the legend.
"""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from pathlib import Path

from ..utc import utc
from .load import IncidentReport, duration, is_event, kill_spans, segments
from .placement import Placer, box, fit_width
from .strip import action_colour, draw_strip

# tab10 without its red (red means the kill switch and P0 events), plus navy: one colour per default metric
METRIC_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f"]
METRIC_COLOURS.append("#000080")
SIZE = (14, 10)  # inches at 100 dpi: 1400 × 1000 px
LEFT, RIGHT, LEGEND_X = 0.07, 0.70, 0.775  # the panels' left and right edges, the legend column (figure fractions)
KILLING = ("kill", "auto_kill")


def render_chart(report: IncidentReport, path: Path) -> None:
    """Write the PNG."""
    import matplotlib

    matplotlib.use("Agg")  # harmless when already Agg; the Figure below never needs a display
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    span = report.end - report.chart_start
    right = report.end + max(span * 0.05, timedelta(seconds=5))
    x0, x1 = mdates.date2num(report.chart_start), mdates.date2num(right)

    fig = Figure(figsize=SIZE, dpi=100)
    renderer = FigureCanvasAgg(fig).get_renderer()
    top = _title(fig, report, renderer)
    grid = fig.add_gridspec(
        3, 1, height_ratios=[3.2, 2.2, 1.6], hspace=0.5, left=LEFT, right=RIGHT, top=top, bottom=0.05
    )
    ax_p0 = fig.add_subplot(grid[0])
    ax_p1 = fig.add_subplot(grid[1], sharex=ax_p0)
    ax_strip = fig.add_subplot(grid[2])

    spans = kill_spans(report)
    changes = [c for c in report.changes if c.at >= report.chart_start]
    _mark_changes(ax_p0, ax_p1, spans, changes, x0, x1, mdates)
    metric_colour: dict[str, str] = {}
    spikes = []
    for severity, ax in (("P0", ax_p0), ("P1", ax_p1)):
        spikes += _plot_metrics(report, severity, ax, metric_colour, mdates)
        ax.set_xlim(x0, x1)
        ax.grid(True, color="#dddddd", lw=0.6)
    ax_p0.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, minticks=6, maxticks=14))
    ax_p0.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    ax_p1.set_xlabel("time (UTC)")
    strip_labels = draw_strip(report, ax_strip, changes, spans, x0, x1, mdates)
    legend = fig.legend(
        handles=_legend_handles(report, metric_colour, spans, changes),
        loc="upper left",
        bbox_to_anchor=(LEGEND_X, top),
        fontsize=9,
        frameon=False,
    )

    # the labels inside the panels, measured: first the state changes, then the kill spans, then the spike
    obstacles = [legend.get_window_extent(renderer)]
    for ax in fig.axes:
        obstacles += [box(label, renderer) for label in (ax.xaxis.label, ax.yaxis.label) if label.get_text()]
        obstacles += [box(t, renderer) for t in ax.texts if t not in strip_labels and not hasattr(t, "xyann")]
    placer = Placer(renderer, obstacles)
    area = ax_p0.get_window_extent(renderer).padded(-2)
    for label, candidates in _label_changes(ax_p0, spans, changes, x0, x1, mdates) + spikes:
        placer.place(label, area, candidates)
    strip_area = ax_strip.get_window_extent(renderer).padded(-1)
    for label, candidates in strip_labels.items():
        placer.place(label, strip_area, candidates)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")


def _title(fig, report: IncidentReport, renderer) -> float:
    """The title (wrapped, never cut at the figure's edge) and the subtitle; returns where the panels may start."""
    i = report.incident
    height = fig.bbox.height
    title = fig.suptitle("", x=LEFT, y=0.985, ha="left", va="top", fontsize=14, fontweight="bold")
    text = f"Incident {report.incident_id} — {i['severity']}, {i['status']}: {i['summary']}"
    fit_width(title, text, (1 - LEFT - 0.015) * fig.bbox.width, renderer)
    subtitle = fig.text(
        LEFT,
        (box(title, renderer).y0 - 6) / height,
        f"{utc(report.chart_start, 'plain')} → {utc(report.end)} · per cohort, 10-second buckets "
        "(canary solid, control dashed) · kill switch ON shaded red",
        va="top",
        fontsize=9.5,
        color="#444444",
    )
    return (box(subtitle, renderer).y0 - 32) / height  # room for the P0 panel's own title


def _legend_handles(report: IncidentReport, metric_colour: dict[str, str], spans, changes) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

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
        killing = action in KILLING
        style = {"lw": 2.4, "ls": "-"} if killing else {"lw": 1.6, "ls": (0, (4, 2))}
        handles.append(Line2D([], [], color=action_colour(action), label=f"rollout: {action}", **style))
    return handles


def _mark_changes(ax_p0, ax_p1, spans, changes, x0, x1, mdates) -> None:
    """The kill switch ON as a red span (at least 1.2 % of the axis wide) and a line per state change."""
    min_width = (x1 - x0) * 0.012  # a kill span of a few seconds still shows on an hour's axis
    for ax in (ax_p0, ax_p1):
        for start, end in spans:
            a, b = mdates.date2num(start), mdates.date2num(end)
            ax.axvspan(a, max(b, a + min_width), color="#e74c3c", alpha=0.25, lw=0, zorder=0)
        for change in changes:
            killing = change.action in KILLING
            ax.axvline(
                mdates.date2num(change.at),
                color=action_colour(change.action),
                lw=2.4 if killing else 1.4,
                ls="-" if killing else (0, (4, 2)),
                alpha=0.9,
                zorder=1,
            )


def _plot_metrics(report, severity, ax, metric_colour, mdates) -> list:
    """One panel's series; returns the P0 spike's annotation with its candidate places (none for P1)."""
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
            f"no {severity} samples between {utc(report.chart_start, 'plain')} and {utc(report.end)}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#777777",
            fontsize=10,
        )
        ax.set_yticks([])
        return []
    for s in series:
        colour = metric_colour.setdefault(s.metric.name, METRIC_COLOURS[len(metric_colour) % len(METRIC_COLOURS)])
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
    if not events:
        return []
    s, t, v, label = max(events, key=lambda e: (e[0].metric.kind == "rate", e[2]))
    target = ax if s.metric.kind == "rate" else twin
    shown = f"{v:.2%} ({label})" if s.metric.kind == "rate" else label
    x = mdates.date2num(t)
    spike = target.annotate(
        f"P0 spike: {s.metric.name}\n{s.cohort} {shown} at {utc(t, 'clock')} UTC",
        xy=(x, v),
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
    lo, hi = ax.get_xlim()
    sides = (1, -1) if x < (lo + hi) / 2 else (-1, 1)  # first towards the wider side
    candidates = [
        {"xytext": (side * dx, dy), "ha": "left" if side > 0 else "right", "va": "top" if dy < 0 else "bottom"}
        for dy in (-10, 12, -45, -80)
        for dx in (25, 70)
        for side in sides
    ]
    return [(spike, candidates)]


def _label_changes(ax, spans, changes, x0: float, x1: float, mdates) -> list:
    """Each state change named at the top of the P0 panel (stacked when close), each kill span at its foot.

    Returns the labels with their candidate places, best first.
    """
    out = []
    for change in changes:
        label = ax.annotate(
            change.action + (" (kill switch ON)" if change.action in KILLING else ""),
            xy=(mdates.date2num(change.at), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-5, -6),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8.5,
            fontweight="bold",
            color=action_colour(change.action),
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=7,
        )
        # left of the line, stacked downwards in time order; right of it only when the left has no room
        sides = ((-5, "right"), (5, "left"))
        out.append((label, [{"xytext": (dx, -6 - 13 * level), "ha": ha} for dx, ha in sides for level in range(12)]))
    min_width = (x1 - x0) * 0.012
    for start, end in spans:
        a, b = mdates.date2num(start), mdates.date2num(end)
        b = max(b, a + min_width)
        label = ax.annotate(
            f"KILL SWITCH ON\n{utc(start, 'clock')} → {utc(end, 'clock')} UTC ({duration(end - start)})",
            xy=(a, 0.08),
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
        candidates = [
            place
            for height in (0.08, 0.3, 0.52)
            for place in (
                {"xy": (a, height), "xytext": (-8, 0), "ha": "right"},
                {"xy": (b, height), "xytext": (8, 0), "ha": "left"},
            )
        ]
        out.append((label, candidates))
    return out
