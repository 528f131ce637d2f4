"""Reading a Code 128 SVG back as a scanner would, for the tests of the barcode and of the codes the API draws."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from yibao.formats import code128

SVG = "{http://www.w3.org/2000/svg}"


def decode(svg_text: str, module: int) -> str:
    """Read the bars of our SVG like a scanner would: run lengths → symbols → checksum → digits."""
    root = ET.fromstring(svg_text)
    width = int(root.get("width"))
    bars = sorted((int(r.get("x")), int(r.get("width"))) for r in root.find(f"{SVG}g").findall(f"{SVG}rect"))
    first, (last_x, last_w) = bars[0][0], bars[-1]
    assert first == code128.QUIET_MODULES * module, "left quiet zone"
    assert width - (last_x + last_w) == code128.QUIET_MODULES * module, "right quiet zone"
    runs: list[int] = []
    for (x, w), nxt in zip(bars, bars[1:] + [None]):
        assert x % module == 0 and w % module == 0
        runs.append(w // module)
        if nxt is not None:
            runs.append((nxt[0] - x - w) // module)
    lookup = {p: v for v, p in enumerate(code128.PATTERNS)}
    values = [lookup["".join(map(str, runs[i:i + 6]))] for i in range(0, len(runs) - 7, 6)]
    assert lookup["".join(map(str, runs[-7:]))] == code128.STOP
    start, *data, checksum = values
    assert start == code128.START_C
    assert checksum == (start + sum(i * v for i, v in enumerate(data, 1))) % 103
    return "".join(f"{v:02d}" for v in data)
