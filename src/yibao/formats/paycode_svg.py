"""The payment code as pictures: a QR code (segno) and a Code 128 barcode, both SVG, same digits."""

from __future__ import annotations

import io

import segno

from yibao.formats import code128


def qr_svg(code: str, *, scale: int = 8) -> str:
    """A full QR symbol (never Micro QR, which phone scanners often miss), error level M, 4-module quiet zone."""
    out = io.BytesIO()
    segno.make_qr(code, error="m").save(out, kind="svg", scale=scale, border=4, dark="#000", light="#fff", xmldecl=False,
                                         svgns=True, title="医保支付码 medical-insurance payment code")
    return out.getvalue().decode("utf-8")


def barcode_svg(code: str) -> str:
    return code128.svg(code)
