"""A post's engagement curve as a server-rendered SVG: pure geometry, no script, no library.

The template draws what `plot_curve` computes; the same numbers are in a table beside it for
screen readers and for anyone who wants the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 56  # room for the y-axis labels
MARGIN_RIGHT = 12
MARGIN_TOP = 12
MARGIN_BOTTOM = 28


@dataclass(frozen=True)
class Curve:
    width: int
    height: int
    line: str  # the polyline's points, "x,y x,y …"
    dots: tuple[tuple[float, float], ...]
    y_ticks: tuple[tuple[float, int], ...]  # (y, value)
    x_labels: tuple[tuple[float, datetime], ...]  # (x, moment): the first and the last
    baseline: float  # y of zero


def plot_curve(points: Sequence[tuple[datetime, int]]) -> Curve | None:
    """The curve through (moment, engagement) points in time order; None without points."""
    if not points:
        return None
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds() or 1.0
    top = _nice_ceiling(max(value for _, value in points))
    inner_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    inner_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(moment: datetime) -> float:
        if len(points) == 1:
            return MARGIN_LEFT + inner_w / 2
        return round(MARGIN_LEFT + (moment - first).total_seconds() / span * inner_w, 1)

    def y(value: float) -> float:
        return round(MARGIN_TOP + inner_h - value / top * inner_h, 1)

    coordinates = tuple((x(moment), y(value)) for moment, value in points)
    ticks = tuple((y(value), value) for value in dict.fromkeys((0, top // 2, top)))
    return Curve(
        width=WIDTH,
        height=HEIGHT,
        line=" ".join(f"{cx},{cy}" for cx, cy in coordinates),
        dots=coordinates if len(coordinates) <= 60 else (coordinates[-1],),
        y_ticks=ticks,
        x_labels=((coordinates[0][0], first), (coordinates[-1][0], last))
        if len(points) > 1
        else ((coordinates[0][0], first),),
        baseline=y(0),
    )


def _nice_ceiling(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude
