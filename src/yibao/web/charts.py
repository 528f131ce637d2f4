"""Server-rendered SVG bar charts for the agency's dashboard: no script, no library, no outside asset.

Horizontal bars, one per item, longest for the largest value; each item carries its label on a line of its own
above its bar and its value as text after the bar (so the chart reads without colour and the numbers can be
copied). Values are integers (a count, or fen with a formatter); none may be negative.

**Readable on a phone.** The chart is drawn in a narrow coordinate space (``WIDTH`` = 360 units, the width of a
phone's content column) and scales with its container (``viewBox``; the stylesheet sets ``width: 100%`` with a
maximum on wide screens): at 390 px a 15-unit font is drawn about 13 px tall, on a desktop at most ~20 px. A label
has the whole width (it is above its bar, not beside it), so long labels (English layer names, the what-if's
"layer · stored") are not squeezed. The pages print the same numbers in a table beside each chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH = 360  # viewBox units: a phone's content column, so that the chart's text is not shrunk there
ROW = 50  # units per item: its label line, then its bar
FONT = 15
TITLE_FONT = 16
VALUE_W = 118  # room after the longest bar for its value ("¥1234567.89")
PAD = 6
BAR_H = 18
TOP = 30
BLUE = "#0b5cad"


def bar_space() -> int:
    """The length of the largest value's bar (units)."""
    return WIDTH - VALUE_W - 2 * PAD


def bar_chart(items: Sequence[tuple[str, int]], *, title: str, empty: str, fmt: Callable[[int], str] = str,
              chart_id: str = "", colours: Sequence[str] = (BLUE,)) -> str:
    """An SVG of ``items`` (label, value): bar lengths proportional to the values, the largest ``bar_space()`` long.
    ``colours`` are used in turn (one colour by default: the bars differ by length, not by hue)."""
    if any(value < 0 for _, value in items):
        raise ValueError("bar_chart: values must not be negative")
    space = bar_space()
    height = TOP + max(1, len(items)) * ROW + PAD
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg"{ident} width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
             f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="{FONT}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{PAD}" y="20" font-size="{TITLE_FONT}" font-weight="bold" fill="#1d2330">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="{PAD}" y="{TOP + 22}" fill="#5b6577">{escape(empty)}</text>')
    largest = max((value for _, value in items), default=0)
    for i, (label, value) in enumerate(items):
        y = TOP + i * ROW
        length = 0 if largest == 0 else round(space * value / largest)
        colour = colours[i % len(colours)]
        parts.append(f'<g class="bar" data-value="{value}">'
                     f'<text x="{PAD}" y="{y + 17}" fill="#1d2330">{escape(label)}</text>'
                     f'<rect x="{PAD}" y="{y + 24}" width="{length}" height="{BAR_H}" rx="3" fill="{colour}"/>'
                     f'<text x="{PAD + length + 6}" y="{y + 38}" fill="#1d2330">{escape(fmt(value))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
