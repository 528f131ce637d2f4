"""The PNG reader and the feature vector behind the sandbox verifier; the synthetic faces it separates."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from yibao.face.features import CaptureError, decode_capture, feature_vector, similarity
from yibao.face.png import PngError, decode_grey, encode_grey
from yibao.sandbox.face_samples import capture, face_png
from yibao.sandbox.face_samples import main as samples_main

DEMO_PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周婷", "吴军", "小明", "小红"]


def _png(width, height, colour, rows_bytes, filters):
    """An 8-bit PNG with the given colour type; each row written with the given filter (1–4)."""
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, prev = b"", bytes(width * bpp)
    for row, f in zip(rows_bytes, filters, strict=True):
        out = bytearray()
        for i, v in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pred = {0: 0, 1: a, 2: b, 3: (a + b) >> 1,
                    4: a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)}[f]
            out.append((v - pred) & 0xFF)
        raw += bytes([f]) + bytes(out)
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_grey_round_trip():
    rows = [[(x * 7 + y * 13) % 256 for x in range(20)] for y in range(17)]
    assert decode_grey(encode_grey(rows)) == (20, 17, rows)


@pytest.mark.parametrize("colour", [0, 2, 4, 6])
def test_every_filter_and_colour_type_decodes_to_the_same_grey(colour):
    width, height = 9, 10
    grey = [[(x * 29 + y * 31) % 256 for x in range(width)] for y in range(height)]
    def px(v):
        return {0: [v], 2: [v, v, v], 4: [v, 255], 6: [v, v, v, 255]}[colour]
    rows = [bytes(b for v in row for b in px(v)) for row in grey]
    data = _png(width, height, colour, rows, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0])
    assert decode_grey(data)[2] == grey


def test_alpha_is_composited_over_white():
    data = _png(2, 1, 6, [bytes([0, 0, 0, 0, 0, 0, 0, 255])], [0])
    assert decode_grey(data)[2] == [[255, 0]]


@pytest.mark.parametrize("data, why", [
    (b"GIF89a....", "signature"),
    (encode_grey([[1, 2], [3, 4]])[:-20], "truncated"),
    (encode_grey([[1, 2], [3, 4]]).replace(b"IEND", b"IENX"), "CRC"),
], ids=["not-png", "truncated", "bad-crc"])
def test_bad_pngs_are_refused_with_a_reason(data, why):
    with pytest.raises(PngError, match=why):
        decode_grey(data)


def test_sixteen_bit_images_are_refused():
    data = bytearray(encode_grey([[1] * 4] * 4))
    data[24] = 16  # bit depth in IHDR
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(PngError, match="8-bit"):
        decode_grey(bytes(data))


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
    assert face_png("张伟", 1) != face_png("张伟", 2) != face_png("张伟")  # days really differ


def test_samples_are_deterministic_and_the_command_writes_files(tmp_path):
    assert capture("李娜", 2) == capture("李娜", 2)
    assert samples_main([str(tmp_path), "李娜"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["李娜-0.png", "李娜-1.png", "李娜-2.png"]
    assert samples_main([]) == 2
