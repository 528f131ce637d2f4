"""The file a 1301-series catalogue download answers (fetched with 9102): a zip holding one UTF-8 text file, tab-separated,
one entry a line — the national practice's shape (`….txt.zip`, tab-separated rows) [?]. The national column layout per
list type (1301 has ~97 columns) was not available, so the columns are yibao's catalogue file columns (docs/catalogue.md,
the ones `yibao catalogue import` reads), then `lmt_used_flag`, `vali_flag` (0: removed since the version the HIS had)
and `updt_time` (Beijing, yyyy-MM-dd HH:mm:ss) — named in a first header line, so a HIS maps them by name."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

from yibao.domain.catalogue import COLUMNS

FILE_COLUMNS = (*COLUMNS, "lmt_used_flag", "vali_flag", "updt_time")
_UNSAFE = str.maketrans({"\t": " ", "\r": " ", "\n": " "})  # a cell never breaks the row: no catalogue value carries these


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    return str(value).translate(_UNSAFE)


def to_txt(rows: list[dict[str, Any]]) -> bytes:
    lines = ["\t".join(FILE_COLUMNS)]
    lines += ["\t".join(cell(row.get(c)) for c in FILE_COLUMNS) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def zip_one(name: str, data: bytes, at: datetime) -> bytes:
    """One file in a zip, stamped ``at`` (so the same content at the same time is the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(at.year, at.month, at.day, at.hour, at.minute, at.second))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)
    return buf.getvalue()


def read(zipped: bytes) -> tuple[str, list[dict[str, str]]]:
    """The text file's name and its rows by column name (a HIS's reading; the tests' and `yibao fsi call`'s)."""
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        (name,) = z.namelist()
        text = z.read(name).decode("utf-8")
    lines = [line for line in text.split("\r\n") if line]
    header = lines[0].split("\t")
    return name, [dict(zip(header, line.split("\t"))) for line in lines[1:]]
