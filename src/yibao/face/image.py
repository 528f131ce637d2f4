"""Face captures as images, read with Pillow: JPEG and PNG only, at most MAX_SIDE pixels a side.

`decode_grey` returns grey levels (alpha composited over white) for the features and the sandbox verifier;
`check_image` looks at the header alone (no pixel is decoded) so that the platform refuses another format or
an oversize image — a decompression bomb among them — before it costs a call to the verifier; `encode_grey`
writes the synthetic sample faces. Every refusal is an `ImageError` carrying Chinese and English text.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG")  # what a terminal's camera gives; anything else is refused
MAX_SIDE = 1024
MAX_PIXELS = MAX_SIDE * MAX_SIDE


class ImageError(ValueError):
    """The bytes are not a capture this platform reads; zh and en say why."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError("capture_type", "人脸图像须为JPEG或PNG格式", "the capture must be a JPEG or PNG image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large() from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError("bad_capture", "人脸图像已损坏，无法读取", f"the capture is corrupt: {exc}") from None
    width, height = image.size
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise _too_large(f", not {width}×{height}")
    return image


def _too_large(detail: str = "") -> ImageError:
    return ImageError("capture_too_large", f"人脸图像过大：长和宽均不得超过{MAX_SIDE}像素",
                      f"the capture is too large: each side must be 1–{MAX_SIDE} pixels{detail}")


def check_image(data: bytes) -> str:
    """The capture's format ("JPEG" or "PNG") from its header; refuses another format and oversize sides."""
    return str(_open(data).format)


def decode_grey(data: bytes) -> tuple[int, int, list[list[int]]]:
    """(width, height, rows of grey levels 0–255); alpha is composited over white."""
    image = _open(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba)
            grey = image.convert("L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ImageError("bad_capture", "人脸图像已损坏，无法读取", f"the capture is corrupt: {exc}") from None
    width, height = grey.size
    pixels = grey.tobytes()
    return width, height, [list(pixels[y * width:(y + 1) * width]) for y in range(height)]


def encode_grey(rows: list[list[int]], fmt: str = "PNG", **options: int) -> bytes:
    """Write rows of grey levels (clamped to 0–255) as an 8-bit greyscale PNG (or JPEG: fmt="JPEG", quality=…)."""
    height, width = len(rows), len(rows[0])
    image = Image.frombytes("L", (width, height), b"".join(bytes(max(0, min(255, int(v))) for v in row) for row in rows))
    out = io.BytesIO()
    image.save(out, format=fmt, **({"optimize": True} if fmt == "PNG" else {}), **options)
    return out.getvalue()
