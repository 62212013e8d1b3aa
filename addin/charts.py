"""The geometry of the server-drawn SVG charts (``templates/reports/_charts.html``): worked out
here, rounded to a tenth of a unit, so that the templates only place what they are given (a
chart of 30 reps was 4,000 numbers written to 15 decimals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from flask import Flask

from services.reports.dashboard import CHART_PARTS as PARTS  # colours a stacked bar has (pane.css: .part-0 to .part-3)

ROW = 22  # a bar's row height
LABEL = 120  # the bars start right of the names
LENGTH = 140  # the longest bar
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _tenth(value: float) -> float:
    return round(value, 1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int  # the row's top
    width: float

    @property
    def value_x(self) -> float:  # the value's text, just past the bar
        return _tenth(LABEL + 4 + self.width)


@dataclass(frozen=True)
class Segment:
    part: str
    value: int
    x: float
    width: float
    colour: int  # .part-N


@dataclass(frozen=True)
class Stack:
    label: str
    y: int
    segments: list[Segment]
    total: int
    total_x: float  # the total's text, just past the last segment


@dataclass(frozen=True)
class LegendEntry:
    part: str
    x: int
    y: int
    colour: int


@dataclass(frozen=True)
class StackedChart:
    height: int
    stacks: list[Stack]
    legend: list[LegendEntry]


def bars(rows: Sequence[tuple[str, int]]) -> tuple[int, list[Bar]]:
    """One bar per (name, value), the largest ``LENGTH`` long: the chart's height and its bars."""
    top = max((value for _, value in rows), default=0)
    return len(rows) * ROW + 4, [
        Bar(name[:18], value, i * ROW + 4, _tenth(LENGTH * value / top) if top else 0.0)
        for i, (name, value) in enumerate(rows)
    ]


def stacked(rows: Sequence[tuple[str, Sequence[tuple[str, int]]]]) -> StackedChart:
    """One bar per (name, [(part, value)]), a segment per part in the part's colour, the longest
    bar ``LENGTH`` long, and a legend two to a row below the bars."""
    totals = [sum(value for _, value in parts) for _, parts in rows]
    top = max(totals, default=0)
    stacks = []
    for i, ((name, parts), total) in enumerate(zip(rows, totals)):
        x, segments = float(LABEL), []
        for n, (part, value) in enumerate(parts):
            width = _tenth(LENGTH * value / top) if top else 0.0
            segments.append(Segment(part, value, _tenth(x), width, n % PARTS))
            x += width
        stacks.append(Stack(name[:18], i * ROW + 4, segments, total, _tenth(x + 4)))
    names = [part for part, _ in rows[0][1]] if rows else []
    legend = [
        LegendEntry(part, LABEL + (n % 2) * 90, len(rows) * ROW + 10 + (n // 2) * 16, n % PARTS)
        for n, part in enumerate(names)
    ]
    return StackedChart(len(rows) * ROW + 12 + 16 * ((len(names) + 1) // 2), stacks, legend)


def heat(counts: Sequence[int]) -> list[tuple[str, int, int, str]]:
    """A week's seven cells: (day, count, x, opacity), darker for more."""
    top = max(counts, default=0)
    return [
        (WEEKDAYS[n], count, n * 20, f"{0.08 + 0.92 * count / top:.2f}" if top else "0.08")
        for n, count in enumerate(counts)
    ]


def sparkline(values: Sequence[float]) -> str:
    """A polyline's points across 120 × 24, the largest value at the top."""
    top = max(values, default=0)
    step = 120 / ((len(values) - 1) or 1)
    return " ".join(
        f"{_tenth(n * step)},{_tenth(22 - (20 * value / top if top else 0))}" for n, value in enumerate(values)
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(bar_chart=bars, stacked_chart=stacked, heat_cells=heat, sparkline_points=sparkline)
