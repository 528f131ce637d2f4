"""A small PNG codec: enough to read a terminal's capture and to write the synthetic sample faces.

Reads non-interlaced 8-bit greyscale, grey+alpha, RGB and RGBA images and returns grey levels;
writes 8-bit greyscale. Pure Python and zlib: the verifier needs no imaging library.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
MAX_SIDE = 1024


class PngError(ValueError):
    """The bytes are not a PNG this codec reads; the message says why."""


def _chunks(data: bytes):  # noqa: ANN202
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PngError("truncated chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]:
            raise PngError(f"bad CRC in {kind.decode('latin-1')} chunk")
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise PngError("no IEND chunk")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise PngError("image data has the wrong length")
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
        elif ftype != 0:
            raise PngError(f"unknown filter type {ftype}")
        rows.append(line)
        prev = line
    return rows


def decode_grey(data: bytes) -> tuple[int, int, list[list[int]]]:
    """(width, height, rows of grey levels 0–255); alpha is composited over white."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG image (bad signature)")
    header, idat = None, bytearray()
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if header is None:
        raise PngError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise PngError("only non-interlaced 8-bit grey, grey+alpha, RGB or RGBA images are read")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise PngError(f"image sides must be 1–{MAX_SIDE} pixels")
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as exc:
        raise PngError(f"corrupt image data: {exc}") from None
    bpp = _CHANNELS[colour]
    grey: list[list[int]] = []
    for line in _unfilter(raw, width, height, bpp):
        if colour == 0:
            grey.append(list(line))
            continue
        out = []
        for x in range(width):
            px = line[x * bpp:(x + 1) * bpp]
            level = px[0] if colour in (0, 4) else (299 * px[0] + 587 * px[1] + 114 * px[2]) // 1000
            if colour in (4, 6):
                alpha = px[-1]
                level = (level * alpha + 255 * (255 - alpha)) // 255
            out.append(level)
        grey.append(out)
    return width, height, grey


def encode_grey(rows: list[list[int]]) -> bytes:
    """Write rows of grey levels (clamped to 0–255) as an 8-bit greyscale PNG."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(max(0, min(255, int(v))) for v in row) for row in rows)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
