"""The SVG charts' geometry (``addin.charts``): proportional, contiguous, rounded, and sane on
nothing to draw."""

from __future__ import annotations

import pytest

from addin import charts


def test_bars_are_proportional_to_the_largest_and_rounded():
    height, bars = charts.bars([("Qualify", 30), ("Propose", 10), ("A name longer than the label fits", 7), ("Won", 0)])
    assert height == 4 * charts.ROW + 4
    assert [b.width for b in bars] == [140.0, 46.7, 32.7, 0.0]
    assert [b.y for b in bars] == [4, 26, 48, 70] and bars[2].label == "A name longer than"
    assert [b.value_x for b in bars] == [264.0, 170.7, 156.7, 124.0]
    assert charts.bars([]) == (4, [])
    assert [b.width for b in charts.bars([("a", 0), ("b", 0)])[1]] == [0.0, 0.0]


def test_stacked_segments_follow_each_other_and_the_legend_names_each_colour():
    chart = charts.stacked(
        [
            ("Rita", [("email", 930), ("call", 735), ("meeting", 193), ("other", 357)]),
            ("Tom", [("email", 10), ("call", 0), ("meeting", 3), ("other", 1)]),
        ]
    )
    rita, tom = chart.stacks
    assert [s.x for s in rita.segments] == [120.0, 178.8, 225.3, 237.5]
    for stack in chart.stacks:
        for before, after in zip(stack.segments, stack.segments[1:]):
            assert after.x == pytest.approx(before.x + before.width, abs=0.11)  # each starts where the one before ends
    assert rita.total == 2215 and sum(s.width for s in rita.segments) == pytest.approx(140, abs=0.2)
    assert tom.total == 14 and rita.total_x == pytest.approx(264, abs=0.2)
    assert [(e.part, e.colour) for e in chart.legend] == [("email", 0), ("call", 1), ("meeting", 2), ("other", 3)]
    assert chart.height == 2 * charts.ROW + 12 + 16 * 2
    assert all(len(str(value)) <= 5 for s in chart.stacks for seg in s.segments for value in (seg.x, seg.width))
    assert charts.stacked([]).stacks == [] and charts.stacked([]).legend == []


def test_heat_and_sparkline():
    cells = charts.heat([0, 5, 10, 0, 0, 0, 0])
    assert [(day, x, opacity) for day, _, x, opacity in cells][:3] == [
        ("Mon", 0, "0.08"),
        ("Tue", 20, "0.54"),
        ("Wed", 40, "1.00"),
    ]
    assert {opacity for *_, opacity in charts.heat([0] * 7)} == {"0.08"}
    assert charts.sparkline([0, 5, 10]) == "0.0,22.0 60.0,12.0 120.0,2.0"
    assert charts.sparkline([3]) == "0.0,2.0" and charts.sparkline([]) == ""
