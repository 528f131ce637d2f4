"""The dashboard's SVG bar chart: proportional, labelled, escaped, valid XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from yibao.web.charts import FONT, WIDTH, bar_chart, bar_space

NS = {"s": "http://www.w3.org/2000/svg"}


def bars(svg: str) -> list[tuple[str, int, str]]:
    root = ET.fromstring(svg)
    out = []
    for g in root.findall("s:g", NS):
        texts = g.findall("s:text", NS)
        out.append((texts[0].text, int(g.find("s:rect", NS).get("width")), texts[1].text))
    return out


def test_bars_are_proportional_and_the_largest_fills_the_space():
    svg = bar_chart([("深圳", 4), ("青岛", 2), ("宁波", 1), ("空", 0)], title="t", empty="none")
    space = bar_space()
    assert 0 < space < WIDTH
    assert bars(svg) == [("深圳", space, "4"), ("青岛", round(space / 2), "2"), ("宁波", round(space / 4), "1"), ("空", 0, "0")]


def test_values_are_formatted_and_text_is_escaped():
    svg = bar_chart([("<a&b>", 12345)], title="x<y", empty="none", fmt=lambda fen: f"¥{fen // 100}.{fen % 100:02d}")
    root = ET.fromstring(svg)  # parses: nothing unescaped
    assert root.find("s:title", NS).text == "x<y"
    assert bars(svg) == [("<a&b>", bar_space(), "¥123.45")]


def test_all_zero_and_empty_charts_draw_no_bar_lengths_and_say_so():
    assert [w for _, w, _ in bars(bar_chart([("a", 0), ("b", 0)], title="t", empty="none"))] == [0, 0]
    root = ET.fromstring(bar_chart([], title="t", empty="今日暂无结算"))
    assert root.findall("s:g", NS) == [] and "今日暂无结算" in [t.text for t in root.findall("s:text", NS)]


def test_negative_values_are_refused():
    with pytest.raises(ValueError):
        bar_chart([("a", -1)], title="t", empty="none")


def test_the_chart_scales_with_its_box_and_its_text_is_large_for_its_width():
    """A viewBox (the page scales it to its column) as narrow as a phone's column; the label above its bar, at the left."""
    root = ET.fromstring(bar_chart([("宁波市 330200", 3)], title="t", empty="none"))
    assert root.get("viewBox").split()[2] == str(WIDTH) and root.get("font-size") == str(FONT)
    label, rect, _ = root.find("s:g", NS)
    assert float(label.get("y")) < float(rect.get("y")) and label.get("x") == rect.get("x")
