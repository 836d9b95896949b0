"""The report's chart is readable: measured with matplotlib's own geometry, nothing covers anything that matters.

Each case builds an incident, renders its chart and keeps the Figure that ``render_chart`` saved; then, with the
Agg renderer, it reads the window extents (pixels) of the title, the legend, every axis label and every
annotation (the text with its frame; the arrow runs inside the panel) and checks that the title lies inside the
figure and says the whole summary (wrapped, not cut), and that every annotation lies inside its panel and
overlaps neither the legend, nor an axis label, nor another annotation.

The cases: a spike seconds ago (the P0 spike and the kill switch at the right edge, next to the legend: the
layout that once covered the right axis label and the legend), a spike half an hour ago then a resume, an
incident without samples, and a summary too long for three lines.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from chat_rollout import report, scenarios
from pytest_tests.support.calls import arrange_state, set_state, state
from pytest_tests.support.samples import healthy_p0, put, sample

P1 = ("resync_range_unavailable_rate", "full_state_rate", "forced_resync_rate")
SPIKE = "ack_without_receipt_10s_rate"


def traffic(start: timedelta, end: timedelta, anchor) -> list[dict]:
    """Healthy P0 and near-baseline P1 samples for both cohorts, every 10 s from anchor+start to anchor+end."""
    out = healthy_p0(start, end, anchor)
    t, n = anchor + start, 0
    while t <= anchor + end:
        for k, metric in enumerate(P1):
            out += [sample(metric, "control", t, 18 + (n + k) % 5, 20000), sample(metric, "canary", t, 2 + n % 3, 2000)]
        out += [sample("recovery_p95_ms", cohort, t, value=800 + 10 * (n % 4)) for cohort in ("control", "canary")]
        t += timedelta(seconds=10)
        n += 1
    return out


def spike(conn, at) -> int:
    """A P0 spike at ``at``: the ingestion kills the rollout and opens a P0 incident; returns its id."""
    put(conn, [sample(SPIKE, "canary", at, 3, 200), sample(SPIKE, "canary", at + timedelta(seconds=10), 7, 210)])
    assert state(conn)["kill_switch"] is True
    return conn.execute("select incident_id from chat_get_v11_incidents() where severity = 'P0'").fetchone()[0]


def spike_seconds_ago(conn) -> int:
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, traffic(timedelta(minutes=-40), timedelta(seconds=-40), anchor))
    return spike(conn, anchor - timedelta(seconds=30))


def spike_then_resume(conn) -> int:
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, traffic(timedelta(minutes=-60), timedelta(minutes=-36), anchor))
    incident_id = spike(conn, anchor - timedelta(minutes=35))
    put(conn, traffic(-timedelta(minutes=34, seconds=40), timedelta(0), anchor))  # the clean exit window
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    set_state(conn, "canary_1", False, "resume controlled")
    return incident_id


def nothing_sampled(conn) -> int:
    return conn.execute("select incident_id from chat_open_v11_incident('P1', 'resync range spike')").fetchone()[0]


CASES = {
    "spike seconds ago": (spike_seconds_ago, None),
    "spike then resume": (spike_then_resume, None),
    "nothing sampled": (nothing_sampled, None),
    "a summary too long for three lines": (spike_seconds_ago, "automatic kill: " + "a long summary " * 40),
}


@pytest.fixture
def saved(monkeypatch) -> list[Figure]:
    """The figures saved while the test runs (render_chart saves exactly one)."""
    figures: list[Figure] = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def extent(text: Text, renderer) -> Bbox:
    """A text's window extent with its frame (an annotation's bbox patch), without an annotation's arrow."""
    bbox = Text.get_window_extent(text, renderer)
    patch = text.get_bbox_patch()
    return Bbox.union([bbox, patch.get_window_extent(renderer)]) if patch is not None else bbox


def overlap(a: Bbox, b: Bbox) -> float:
    width, height = min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def inside(inner: Bbox, outer: Bbox, slack: float = 0.5) -> bool:
    return (
        inner.x0 >= outer.x0 - slack
        and inner.y0 >= outer.y0 - slack
        and inner.x1 <= outer.x1 + slack
        and inner.y1 <= outer.y1 + slack
    )


@pytest.mark.parametrize("case", list(CASES))
def test_the_title_fits_and_no_annotation_covers_the_legend_an_axis_label_or_another(conn, tmp_path, saved, case):
    build, summary = CASES[case]
    data = report.load(conn, build(conn))
    if summary is not None:
        data.incident = {**data.incident, "summary": summary}
    report.render_chart(data, tmp_path / "chart.png")
    assert len(saved) == 1
    fig = saved[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox

    # the title: inside the figure, the whole summary wrapped (only past three lines is it shortened, with "…")
    title = next(t for t in fig.texts if t.get_text() and t.get_text() == fig.get_suptitle())
    assert inside(extent(title, renderer), page), f"the title sticks out of the figure: {extent(title, renderer)}"
    words = " ".join(title.get_text().split())
    expected = " ".join(data.incident["summary"].split())
    if summary is None:
        assert words.endswith(expected), f"the title cuts the summary: {title.get_text()!r}"
    else:
        assert len(title.get_text().splitlines()) <= 3 and words.endswith("…") and expected.startswith("automatic kill")

    legend = fig.legends[0].get_window_extent(renderer)
    assert inside(legend, page), f"the legend sticks out of the figure: {legend}"
    labels = {
        f"axis label {label.get_text()!r}": extent(label, renderer)
        for ax in fig.axes
        for label in (ax.xaxis.label, ax.yaxis.label)
        if label.get_text()
    }
    assert any("rate per 10 s bucket" in name for name in labels) or case == "nothing sampled"
    panel_titles = {f"panel title {ax.title.get_text()!r}": extent(ax.title, renderer) for ax in fig.axes}
    for name, box in {**labels, **panel_titles}.items():
        assert inside(box, page), f"{name} sticks out of the figure: {box}"
        assert not overlap(box, legend), f"{name} overlaps the legend"
    for name, box in {**panel_titles, "the legend": legend}.items():
        assert not overlap(extent(title, renderer), box), f"the title overlaps {name}"

    annotations = [(t, ax) for ax in fig.axes for t in ax.texts if isinstance(t, Annotation) and t.get_visible()]
    if case != "nothing sampled":
        shown = " ".join(t.get_text() for t, _ in annotations)
        assert "P0 spike: " in shown and "KILL SWITCH ON" in shown
    placed: dict[str, Bbox] = {}
    for text, ax in annotations:
        name, box = f"annotation {text.get_text()!r}", extent(text, renderer)
        assert inside(box, ax.get_window_extent(renderer)), f"{name} sticks out of its panel: {box}"
        assert not overlap(box, legend), f"{name} overlaps the legend"
        for other, other_box in {**labels, **placed}.items():
            assert not overlap(box, other_box), f"{name} overlaps {other}"
        placed[name] = box
