"""Face features for the sandbox verifier: a deterministic vector from the pixels, compared by cosine.

The capture is reduced to GRID×GRID mean grey levels, centred and scaled to unit length, so the
score ignores brightness and contrast and tolerates noise and a pixel or two of shift. This is a
stand-in for a real recognition model, good enough to tell the synthetic sample faces apart.
"""

from __future__ import annotations

import base64
import binascii
import math

from yibao.face.image import ImageError, decode_grey

GRID = 16
MIN_SIDE = 16
MAX_CAPTURE_BYTES = 256 * 1024


class CaptureError(ValueError):
    """The capture cannot be used: not base64, not a readable JPEG or PNG, too small or blank."""


def decode_capture(capture_b64: str) -> bytes:
    try:
        data = base64.b64decode(capture_b64, validate=True)
    except (binascii.Error, ValueError):
        raise CaptureError("the capture is not valid base64") from None
    if len(data) > MAX_CAPTURE_BYTES:
        raise CaptureError(f"the capture is larger than {MAX_CAPTURE_BYTES // 1024} KB")
    return data


def feature_vector(image: bytes) -> list[float]:
    try:
        width, height, rows = decode_grey(image)
    except ImageError as exc:
        raise CaptureError(str(exc)) from None
    if width < MIN_SIDE or height < MIN_SIDE:
        raise CaptureError(f"the capture must be at least {MIN_SIDE}×{MIN_SIDE} pixels")
    cells = []
    for gy in range(GRID):
        y0, y1 = gy * height // GRID, (gy + 1) * height // GRID
        for gx in range(GRID):
            x0, x1 = gx * width // GRID, (gx + 1) * width // GRID
            total = sum(sum(rows[y][x0:x1]) for y in range(y0, y1))
            cells.append(total / ((y1 - y0) * (x1 - x0)))
    mean = sum(cells) / len(cells)
    centred = [c - mean for c in cells]
    norm = math.sqrt(sum(c * c for c in centred))
    if norm < 1.0:  # a uniform image: nothing to recognise
        raise CaptureError("the capture is blank (no face found)")
    return [c / norm for c in centred]


def similarity(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two unit vectors, in [-1, 1]."""
    return sum(x * y for x, y in zip(a, b, strict=True))
