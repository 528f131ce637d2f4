"""Synthetic sample faces for tests and the demo pages: one face per person, drawn from a seed.

`face_png(key)` draws the person's face — day 0, the ENROLMENT image: a still photo, without sensor
noise; `face_png(key, day=n)` draws the same person live on another day (other light, contrast, a
small shift and a camera's sensor noise), which the sandbox verifier matches and finds live;
`reshot(key)` is the enrolment photo shown to the camera again under other light — which the verifier
matches but finds NOT live (yibao.sandbox.face: its liveness rule). A different key is another person,
which it does not match. Nothing here is a real person's image.

    python -m yibao.sandbox.face_samples out/ 张三 李四      # writes out/张三-0.png, out/张三-1.png …
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from yibao.face.image import encode_grey

SIZE = 64


@dataclass(frozen=True)
class _Face:
    background: float
    skin: float
    cx: float
    cy: float
    rx: float
    ry: float
    hair: float
    hairline: float
    eye_dy: float
    eye_gap: float
    eye_r: float
    mouth_y: float
    mouth_w: float
    blobs: tuple[tuple[float, float, float, float], ...]  # x, y, radius, amplitude


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest())


def _face(key: str) -> _Face:
    r = _rng("face", key)
    return _Face(
        background=r.uniform(70, 190), skin=r.uniform(90, 190), cx=r.uniform(26, 38), cy=r.uniform(29, 37),
        rx=r.uniform(14, 24), ry=r.uniform(18, 28), hair=r.uniform(0, 120), hairline=r.uniform(0.15, 0.55),
        eye_dy=r.uniform(-9, -3), eye_gap=r.uniform(5, 10), eye_r=r.uniform(1.5, 3.5),
        mouth_y=r.uniform(7, 14), mouth_w=r.uniform(3, 8),
        blobs=tuple((r.uniform(8, 56), r.uniform(8, 56), r.uniform(3.5, 7), r.choice((-1, 1)) * r.uniform(70, 120)) for _ in range(18)),
    )


def _level(f: _Face, x: float, y: float) -> float:
    dx, dy = (x - f.cx) / f.rx, (y - f.cy) / f.ry
    inside = dx * dx + dy * dy <= 1.0
    v = f.background
    if inside:
        v = f.hair if (y - (f.cy - f.ry)) < f.hairline * f.ry else f.skin
        for side in (-1, 1):  # eyes
            ex, ey = f.cx + side * f.eye_gap, f.cy + f.eye_dy
            if (x - ex) ** 2 + (y - ey) ** 2 <= f.eye_r ** 2:
                v = 25
        if abs(y - (f.cy + f.mouth_y)) <= 1.2 and abs(x - f.cx) <= f.mouth_w:
            v = 60
    for bx, by, br, amp in f.blobs:  # shading and marks that make the face this person's
        v += amp * math.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * br * br))
    return v


def face_png(key: str, day: int = 0, size: int = SIZE) -> bytes:
    """The face of person ``key`` as a greyscale PNG; ``day`` > 0 varies the capture, not the person."""
    return encode_grey(_rows(key, day, size))


def face_jpeg(key: str, day: int = 0, size: int = SIZE, quality: int = 92) -> bytes:
    """The same face as a camera's JPEG."""
    return encode_grey(_rows(key, day, size), "JPEG", quality=quality)


def _rows(key: str, day: int, size: int) -> list[list[int]]:
    f = _face(key)
    r = _rng("day", key, day)
    gain, offset = (1.0, 0.0) if day == 0 else (r.uniform(0.8, 1.2), r.uniform(-25, 25))
    sx, sy = (0.0, 0.0) if day == 0 else (r.uniform(-1, 1), r.uniform(-1, 1))
    noise = 0.0 if day == 0 else 8.0
    scale = SIZE / size
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            v = _level(f, (px + 0.5) * scale + sx, (py + 0.5) * scale + sy)
            row.append(round(v * gain + offset + (r.gauss(0, noise) if noise else 0.0)))
        rows.append(row)
    return rows


def capture(key: str, day: int = 0, fmt: str = "PNG") -> str:
    """The face as a capture, ready for the verifier API (base64 PNG, or JPEG)."""
    return base64.b64encode(face_jpeg(key, day) if fmt == "JPEG" else face_png(key, day)).decode("ascii")


def reshot(key: str, gain: float = 1.15, offset: float = -12.0) -> str:
    """The enrolment photo (day 0) held up to a camera under other light: brighter or darker, more or less
    contrast — still the same still image (a capture, base64 PNG)."""
    f = _face(key)
    rows = [[round(_level(f, px + 0.5, py + 0.5) * gain + offset) for px in range(SIZE)] for py in range(SIZE)]
    return base64.b64encode(encode_grey(rows)).decode("ascii")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m yibao.sandbox.face_samples OUT_DIR NAME [NAME …]", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in argv[1:]:
        for day in range(3):
            (out / f"{name}-{day}.png").write_bytes(face_png(name, day))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
