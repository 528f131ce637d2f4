"""Code 128 (ISO/IEC 15417), code set C only: what the payment code's barcode needs, as SVG.

An all-digit value of even length packs two digits per symbol in code set C: start C, one symbol
per pair, the mod-103 checksum, stop. Each symbol is three bars and three spaces, 11 modules wide;
the stop is 13 (its last bar is the termination bar). Ten modules of quiet zone on each side.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

# Bar and space widths in modules (bar first) for symbol values 0–106.
PATTERNS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)
START_C = 105
STOP = 106
QUIET_MODULES = 10


def symbols(digits: str) -> list[int]:
    """The symbol values for ``digits``: start C, the pairs, the checksum, stop."""
    if not digits or len(digits) % 2 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("code set C encodes a non-empty, even number of ASCII digits")
    values = [START_C] + [int(digits[i:i + 2]) for i in range(0, len(digits), 2)]
    checksum = (values[0] + sum(position * v for position, v in enumerate(values[1:], start=1))) % 103
    return [*values, checksum, STOP]


def widths(digits: str) -> list[int]:
    """Alternating bar and space widths in modules, bar first, without the quiet zones."""
    return [int(w) for value in symbols(digits) for w in PATTERNS[value]]


def svg(digits: str, *, module: int = 2, height: int = 80, caption: bool = True) -> str:
    """A standalone SVG barcode: black bars on white, quiet zones included, digits printed below."""
    runs = widths(digits)
    total = (sum(runs) + 2 * QUIET_MODULES) * module
    text_height = 22 if caption else 0
    bars, x = [], QUIET_MODULES * module
    for i, run in enumerate(runs):
        if i % 2 == 0:  # even positions are bars, odd ones spaces
            bars.append(f'<rect x="{x}" y="0" width="{run * module}" height="{height}"/>')
        x += run * module
    label = ""
    if caption:
        grouped = " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))
        label = (f'<text x="{total // 2}" y="{height + 17}" font-family="monospace" font-size="16" text-anchor="middle">'
                 f"{escape(grouped)}</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height + text_height}" '
            f'viewBox="0 0 {total} {height + text_height}" shape-rendering="crispEdges">'
            f'<rect width="{total}" height="{height + text_height}" fill="#fff"/>'
            f'<g fill="#000">{"".join(bars)}</g>{label}</svg>')
