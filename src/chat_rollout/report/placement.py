"""Where the chart's labels go: measured with the renderer, so that none covers another, the legend or an axis.

Each label (an ``Annotation`` or a ``Text``) comes with candidate placements, best first. ``Placer.place`` tries
them in turn and keeps the first whose box lies inside the label's area (its axes) and overlaps nothing placed
before it (nor the obstacles: the legend, the axis labels); when every candidate collides it keeps the one that
collides least. The box is the text and its rounded frame, not the arrow, which runs inside the axes anyway.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from matplotlib.text import Text
from matplotlib.transforms import Bbox

MAX_TITLE_LINES = 3


def box(text: Text, renderer) -> Bbox:
    """The window extent (pixels) of a text with its frame, without an annotation's arrow."""
    text.get_window_extent(renderer)  # an annotation updates its position first
    extent = Text.get_window_extent(text, renderer)
    patch = text.get_bbox_patch()
    if patch is not None:
        text.update_bbox_position_size(renderer)
        extent = Bbox.union([extent, patch.get_window_extent(renderer)])
    return extent


def overlap(a: Bbox, b: Bbox) -> float:
    """The area (square pixels) two boxes share."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def outside(inner: Bbox, outer: Bbox) -> float:
    """The area of ``inner`` that sticks out of ``outer``."""
    return inner.width * inner.height - overlap(inner, outer)


class Placer:
    """Places labels one by one; every placed label becomes an obstacle for the next."""

    def __init__(self, renderer, obstacles: Iterable[Bbox] = ()) -> None:
        self.renderer = renderer
        self.taken: list[Bbox] = list(obstacles)

    def place(self, text: Text, area: Bbox, candidates: Sequence[dict[str, Any]]) -> Bbox:
        """Apply the first candidate (keys ``xy``, ``xytext``, ``x``, ``y``, ``ha``, ``va``) that fits."""
        best: tuple[float, dict[str, Any]] | None = None
        for candidate in candidates:
            extent = self._try(text, candidate)
            cost = outside(extent, area) * 4 + sum(overlap(extent, other) for other in self.taken)
            if cost == 0:
                best = (0.0, candidate)
                break
            if best is None or cost < best[0]:
                best = (cost, candidate)
        if best is not None:
            extent = self._try(text, best[1])
        else:
            extent = box(text, self.renderer)
        self.taken.append(extent)
        return extent

    def _try(self, text: Text, candidate: dict[str, Any]) -> Bbox:
        for key, value in candidate.items():
            if key == "xytext":
                text.xyann = value
            elif key == "xy":
                text.xy = value
            elif key == "ha":
                text.set_horizontalalignment(value)
            elif key == "va":
                text.set_verticalalignment(value)
            elif key == "x":
                text.set_x(value)
            elif key == "y":
                text.set_y(value)
            else:
                raise ValueError(f"unknown placement {key}")
        return box(text, self.renderer)


def fit_width(text: Text, content: str, width: float, renderer, max_lines: int = MAX_TITLE_LINES) -> None:
    """Set ``content`` on ``text``, wrapped at word boundaries to ``width`` pixels in at most ``max_lines`` lines.

    Only what does not fit in ``max_lines`` lines is shortened (with "…"); the Markdown has the whole text.
    """
    text.set_text(content)
    if box(text, renderer).width <= width:
        return
    chars = len(content)
    while chars > 10:
        chars = int(chars * 0.95)
        lines = textwrap.wrap(content, chars, break_long_words=True)
        if len(lines) > max_lines:
            rest = " ".join(lines[max_lines - 1 :])
            lines = lines[: max_lines - 1] + [textwrap.shorten(rest, chars, placeholder=" …")]
        text.set_text("\n".join(lines))
        if box(text, renderer).width <= width:
            return
