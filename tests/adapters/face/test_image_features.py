"""Captures read with Pillow (JPEG and PNG, nothing else, nothing oversize) and the feature vector behind the
sandbox verifier; the synthetic faces it separates."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.support.face import png_bomb
from yibao.face.features import CaptureError, decode_capture, feature_vector, similarity
from yibao.face.image import ImageError, check_image, decode_grey, encode_grey
from yibao.sandbox.face_samples import capture, face_jpeg, face_png
from yibao.sandbox.face_samples import main as samples_main

DEMO_PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周婷", "吴军", "小明", "小红"]


def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def test_grey_round_trip():
    rows = [[(x * 7 + y * 13) % 256 for x in range(20)] for y in range(17)]
    assert decode_grey(encode_grey(rows)) == (20, 17, rows)


@pytest.mark.parametrize("mode", ["L", "RGB", "LA", "RGBA", "P"])
def test_every_png_colour_mode_decodes_to_the_same_grey(mode):
    grey = [[(x * 29 + y * 31) % 256 for x in range(9)] for y in range(10)]
    image = Image.frombytes("L", (9, 10), bytes(v for row in grey for v in row)).convert(mode)
    assert decode_grey(_saved(image, "PNG"))[2] == grey


def test_alpha_is_composited_over_white():
    image = Image.frombytes("RGBA", (2, 1), bytes([0, 0, 0, 0, 0, 0, 0, 255]))
    assert decode_grey(_saved(image, "PNG"))[2] == [[255, 0]]


def test_a_jpeg_reads_close_to_its_pixels():
    rows = [[(x * 8) % 256 for x in range(32)] for _ in range(32)]
    width, height, grey = decode_grey(encode_grey(rows, "JPEG", quality=95))
    assert (width, height, check_image(encode_grey(rows, "JPEG"))) == (32, 32, "JPEG")
    assert max(abs(a - b) for r1, r2 in zip(rows, grey, strict=True) for a, b in zip(r1, r2, strict=True)) < 24


@pytest.mark.parametrize("data, code", [
    (b"GIF89a" + bytes(40), "capture_type"),
    (b"\x89PNG not really", "capture_type"),
    (_saved(Image.new("L", (20, 20), 9), "BMP"), "capture_type"),
    (_saved(Image.new("L", (20, 20), 9), "WEBP") if "WEBP" in Image.SAVE else b"RIFF", "capture_type"),
    (encode_grey([[1] * 1025] * 2), "capture_too_large"),
    (png_bomb(40_000, 40_000), "capture_too_large"),
    (encode_grey([[1, 2] * 20] * 40)[:-40], "bad_capture"),
], ids=["gif", "bad-signature", "bmp", "webp", "too-wide", "bomb", "truncated"])
def test_other_formats_oversize_and_broken_images_are_refused_in_both_languages(data, code):
    with pytest.raises(ImageError) as exc:
        decode_grey(data)
    assert exc.value.code == code and exc.value.zh and exc.value.en


def test_capture_errors():
    with pytest.raises(CaptureError, match="base64"):
        decode_capture("not base64!")
    with pytest.raises(CaptureError, match="blank"):
        feature_vector(encode_grey([[128] * 32] * 32))
    with pytest.raises(CaptureError, match="at least"):
        feature_vector(encode_grey([[1, 2] * 4] * 8))
    with pytest.raises(CaptureError, match="larger"):
        decode_capture(base64.b64encode(b"x" * (300 * 1024)).decode())


def test_features_ignore_brightness_and_contrast():
    rows = [[(x * y) % 200 for x in range(32)] for y in range(32)]
    brighter = [[v // 2 + 40 for v in row] for row in rows]
    assert similarity(feature_vector(encode_grey(rows)), feature_vector(encode_grey(brighter))) > 0.99


def test_same_person_on_other_days_matches_and_other_people_do_not():
    reference = {k: feature_vector(face_png(k)) for k in DEMO_PEOPLE}
    same = [similarity(reference[k], feature_vector(face_png(k, day))) for k in DEMO_PEOPLE for day in (1, 2, 3)]
    other = [similarity(reference[a], reference[b]) for a in DEMO_PEOPLE for b in DEMO_PEOPLE if a < b]
    assert min(same) >= 0.90
    assert max(other) < 0.80
    assert min(similarity(reference[k], feature_vector(face_jpeg(k, 1))) for k in DEMO_PEOPLE[:4]) >= 0.90  # a camera's JPEG too
    assert face_png("张伟", 1) != face_png("张伟", 2) != face_png("张伟")  # days really differ


def test_samples_are_deterministic_and_the_command_writes_files(tmp_path):
    assert capture("李娜", 2) == capture("李娜", 2)
    assert samples_main([str(tmp_path), "李娜"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["李娜-0.png", "李娜-1.png", "李娜-2.png"]
    assert samples_main([]) == 2
