"""The chart's bottom strip: stage, freeze and kill switch over time, zoomed in when the state changes cluster."""

from __future__ import annotations

from datetime import UTC

from .load import IncidentReport, duration, segments

ACTION_COLOUR = {
    "kill": "#c0392b",
    "auto_kill": "#c0392b",
    "resume": "#1e8449",
    "hold": "#d68910",
    "unfreeze": "#2471a3",
    "promote": "#7d3c98",
    "auto_promote": "#7d3c98",
    "rollback": "#6e2c00",
    "init": "#7f8c8d",
}
LEVELS = (2.55, 2.93, 3.31)  # the heights (data units) of the state changes' names, above the stage row


def action_colour(action: str) -> str:
    return ACTION_COLOUR.get(action, "#555555")


def draw_strip(report: IncidentReport, ax, changes, spans, x0: float, x1: float, mdates) -> dict:
    """Draw the strip; returns the state changes' names with their candidate places (for ``placement.Placer``)."""
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
    labels = {}
    for start, end in spans:
        a, b = mdates.date2num(start), mdates.date2num(end)
        if b > lo and a < hi:
            inside = min(b, hi) - max(a, lo) > width * 0.12
            label = ax.text(
                (max(a, lo) + min(b, hi)) / 2 if inside else min(b, hi) + width * 0.005,
                rows["kill switch"],
                f"ON {duration(end - start)}",
                ha="center" if inside else "left",
                va="center",
                fontsize=8.5,
                color="white" if inside else "#c0392b",
                fontweight="bold",
                clip_on=True,
            )
            if not inside:  # beside the span: right of it, or left of it when the right has no room
                right, left = min(b, hi) + width * 0.005, max(a, lo) - width * 0.005
                labels[label] = [{"x": right, "ha": "left"}, {"x": left, "ha": "right"}]
    for change in changes:
        x = mdates.date2num(change.at)
        if not lo <= x <= hi:
            continue
        colour = action_colour(change.action)
        ax.axvline(x, color=colour, lw=1.2, ls=":", zorder=3)
        label = ax.text(
            x + width * 0.004,
            LEVELS[0],
            f"v{change.version} {change.action}",
            fontsize=8,
            color=colour,
            fontweight="bold",
            va="bottom",
            clip_on=True,
        )
        right, left = {"x": x + width * 0.004, "ha": "left"}, {"x": x - width * 0.004, "ha": "right"}
        labels[label] = [{**side, "y": y} for side in (right, left) for y in LEVELS]  # later changes higher
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
    return labels
