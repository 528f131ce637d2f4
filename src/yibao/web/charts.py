"""Server-rendered SVG bar charts for the agency's dashboard: no script, no library, no outside asset.

Horizontal bars, one per item, longest for the largest value; each bar carries its label and its
value as text (so the chart reads without colour and the numbers can be copied). Values are
integers (a count, or fen with a formatter); none may be negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

ROW = 30  # px per bar
LABEL_W = 150
VALUE_W = 120
PAD = 8
BLUE = "#0b5cad"


def bar_chart(items: Sequence[tuple[str, int]], *, title: str, empty: str, fmt: Callable[[int], str] = str, width: int = 560,
              chart_id: str = "", colours: Sequence[str] = (BLUE,), label_w: int = LABEL_W) -> str:
    """An SVG of ``items`` (label, value): bar lengths proportional to the values, the largest full width.
    ``colours`` are used in turn (one colour by default: the bars differ by length, not by hue); ``label_w``: the room
    for the labels (px), for a chart whose labels are longer than most."""
    if any(value < 0 for _, value in items):
        raise ValueError("bar_chart: values must not be negative")
    bar_space = width - label_w - VALUE_W - 2 * PAD
    top = 28
    height = top + max(1, len(items)) * ROW + PAD
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg"{ident} width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="13">',
             f"<title>{escape(title)}</title>",
             f'<text x="{PAD}" y="18" font-size="14" font-weight="bold" fill="#1d2330">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="{PAD}" y="{top + 19}" fill="#5b6577">{escape(empty)}</text>')
    largest = max((value for _, value in items), default=0)
    for i, (label, value) in enumerate(items):
        y = top + i * ROW
        length = 0 if largest == 0 else round(bar_space * value / largest)
        colour = colours[i % len(colours)]
        parts.append(f'<g class="bar" data-value="{value}">'
                     f'<text x="{label_w - 6 + PAD}" y="{y + 19}" text-anchor="end" fill="#1d2330">{escape(label)}</text>'
                     f'<rect x="{label_w + PAD}" y="{y + 5}" width="{length}" height="{ROW - 10}" rx="3" fill="{colour}"/>'
                     f'<text x="{label_w + PAD + length + 6}" y="{y + 19}" fill="#1d2330">{escape(fmt(value))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
