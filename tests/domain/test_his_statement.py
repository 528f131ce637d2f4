"""3202's rows and files, pure: the detail file round-trips every row exactly (reverse rows negative), a malformed line
is refused naming the line and the column, and the comparison says each row of either side exactly once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.domain.errors import InputError
from yibao.domain.his_statement import BALANCED, FORWARD, REVERSE, Row, compare_rows
from yibao.formats import his_statement as fmt
from yibao.formats.catalogue_txt import zip_one

AT = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
ids = st.text("ABCDEFGH0123456789", min_size=1, max_size=12)


@st.composite
def rows(draw):
    flag = draw(st.sampled_from((FORWARD, REVERSE)))
    sign = -1 if flag == REVERSE else 1
    amounts = [sign * draw(st.integers(0, 10**9)) for _ in range(3)]
    return Row(draw(ids), draw(ids), draw(ids), *amounts, flag)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows(), max_size=30))
def test_the_detail_file_round_trips(sent):
    assert fmt.read_detail(fmt.write_detail(sent, AT)) == sent


@settings(max_examples=80, deadline=None)
@given(st.lists(rows(), max_size=20, unique_by=lambda r: r.key), st.data())
def test_each_row_of_either_side_is_said_once(platform, data):
    kept = data.draw(st.lists(st.sampled_from(platform), unique_by=lambda r: r.key) if platform else st.just([]))
    extra = data.draw(st.lists(rows(), max_size=5, unique_by=lambda r: r.key))
    extra = [r for r in extra if r.key not in {p.key for p in platform}]
    hospital = kept + extra
    out = compare_rows(hospital, platform)
    assert {r.row.key for r in out} == {r.key for r in platform} | {r.key for r in extra}
    assert len(out) == len(hospital) + len(platform) - len(kept)
    assert {r.row.key for r in out if r.result == BALANCED} == {r.key for r in kept}
    assert {r.row.key for r in out if r.reason == "missing_at_hospital"} == {r.key for r in platform} - {r.key for r in kept}
    assert {r.row.key for r in out if r.reason == "missing_at_platform"} == {r.key for r in extra}


@pytest.mark.parametrize(("line", "field", "code"), [
    ("S1\tV1\tP1\t1.00\t0.50", "file[line 2]", "wrong_column_count"),
    ("S1\tV1\tP1\t1.00\t0.50\t0.00\t2", "file[line 2].refd_setl_flag", "invalid_flag"),
    ("S1\tV1\tP1\t-1.00\t0.50\t0.00\t0", "file[line 2].medfee_sumamt", "negative_forward_row"),
    ("S1\tV1\tP1\t1.001\t0.50\t0.00\t0", "file[line 2].medfee_sumamt", "too_many_decimals"),
    ("\tV1\tP1\t1.00\t0.50\t0.00\t0", "file[line 2].setl_id", "invalid_text"),
])
def test_a_malformed_line_is_refused_by_line_and_column(line, field, code):
    content = zip_one("d.txt", ("S0\tV0\tP0\t1.00\t0.50\t0.00\t0\n" + line).encode(), AT)
    with pytest.raises(InputError) as e:
        fmt.read_detail(content)
    assert (e.value.field, e.value.code) == (field, code)


def test_not_a_zip_or_two_files_is_refused():
    with pytest.raises(InputError, match="zip"):
        fmt.read_detail(b"S0\tV0")
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "x")
        z.writestr("b.txt", "y")
    with pytest.raises(InputError) as e:
        fmt.read_detail(buf.getvalue())
    assert e.value.code == "detail_file_shape"


def test_a_zip_bomb_is_stopped_as_it_inflates_whatever_size_it_claims():
    """The size a zip claims is the sender's word: 40 MB of zeros claiming 10 bytes (a 40 KB upload) is refused by
    counting what really comes out, and an entry compressed other than stored or deflated is refused unread."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("d.txt", b"0" * (40 * 1024 * 1024))
    data = bytearray(buf.getvalue())
    # Rewrite the claimed uncompressed size (local header offset 22, central directory offset 24) to 10 bytes.
    local = data.find(b"PK\x03\x04")
    data[local + 22:local + 26] = (10).to_bytes(4, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(InputError) as e:
        fmt.read_detail(bytes(data))
    assert e.value.code in ("detail_file_too_large", "not_a_zip")
    lz = io.BytesIO()
    with zipfile.ZipFile(lz, "w", zipfile.ZIP_LZMA) as z:
        z.writestr("d.txt", b"S0\tV0\tP0\t1.00\t0.50\t0.00\t0")
    with pytest.raises(InputError) as e:
        fmt.read_detail(lz.getvalue())
    assert e.value.code == "detail_file_shape"


def test_millions_of_blank_lines_are_refused():
    content = zip_one("d.txt", b"\n" * 300_000, AT)
    with pytest.raises(InputError) as e:
        fmt.read_detail(content)
    assert e.value.code == "too_many_rows"
