"""Horizontal bar charts laid out in Python and drawn as inline SVG by `console/_charts.html`.

No charting library or script: the page works offline and under a strict CSP.  Each label sits
above its bar, so long step names never squeeze the bars.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

WIDTH = 480  # viewBox units; the SVG scales to its container
BAR_SPACE = 400  # the longest bar, leaving room for its number
ROW = 46
LABEL_BASELINE = 15
BAR_TOP = 21
BAR_HEIGHT = 18


@dataclass(frozen=True)
class Bar:
    label: str
    shown: str
    top: int
    width: float
    height: int = BAR_HEIGHT

    @property
    def label_y(self) -> int:
        return self.top + LABEL_BASELINE

    @property
    def bar_y(self) -> int:
        return self.top + BAR_TOP

    @property
    def number_x(self) -> float:
        return self.width + 6

    @property
    def number_y(self) -> int:
        return self.bar_y + BAR_HEIGHT - 4


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    bars: tuple[Bar, ...]
    width: int = WIDTH

    @property
    def height(self) -> int:
        return ROW * len(self.bars)

    @property
    def summary(self) -> str:
        """The chart in words, for screen readers."""
        return "；".join(f"{bar.label}：{bar.shown}" for bar in self.bars)


def bar_chart(chart_id: str, title: str, rows: Iterable[tuple[str, float]], *,
              scale_max: float | None = None, shown: Callable[[float], str] = lambda v: f"{v:g}") -> BarChart:
    """scale_max fixes the full-length bar (100 for a percentage); otherwise the largest value."""
    rows = list(rows)
    top = scale_max or max((value for _, value in rows), default=0) or 1
    bars = tuple(Bar(label, shown(value), index * ROW, round(BAR_SPACE * min(value, top) / top, 1))
                 for index, (label, value) in enumerate(rows))
    return BarChart(chart_id, title, bars)
