"""Catalogue files (docs/catalogue.md): UTF-8 CSV with national field names, one entry a row, preceded by
``# key: value`` lines naming the version — ``ver``, ``insu_admdvs`` (the region) and ``begndate`` (in force from).

    # ver: 440300-2026.1
    # insu_admdvs: 440300
    # begndate: 2026-01-01
    hilist_code,hilist_name,list_type,chrgitm_lv,pric_uplmt_amt,selfpay_prop,...,begndate,enddate
    001102000010000,普通门诊诊查费,201,01,,,...,2026-01-01,

Errors name the file, its line number and the column, all of them at once (domain.catalogue.CatalogueFileError).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date

from yibao.domain.catalogue import COLUMNS, CatalogueFileError, Entry, RowError, parse_rows

META_KEYS = ("ver", "insu_admdvs", "begndate")
_META_RE = re.compile(r"^#\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_VER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,39}$")
_REGION_RE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class CatalogueFile:
    name: str
    ver: str
    region: str
    begndate: date
    entries: tuple[Entry, ...]
    note: str | None = None  # a "# note:" line (the demo's files say DEMO there)

    @property
    def digest(self) -> str:
        return digest(self.begndate, self.entries)


def digest(begndate: date, entries: tuple[Entry, ...] | list[Entry]) -> str:
    """What makes two imports the same version: its start and its entries, whatever their order in the file."""
    rows = sorted((e.as_row() for e in entries), key=lambda r: str(r["hilist_code"]))
    for row in rows:  # a column added later counts only where it is used, so a version imported before it hashes the same
        if row["item_category"] is None:
            del row["item_category"]
    text = json.dumps({"begndate": begndate.isoformat(), "entries": rows}, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def parse(name: str, text: str) -> CatalogueFile:
    """A catalogue file's text: its version and entries, or CatalogueFileError listing every error."""
    lines = text.splitlines()
    meta: dict[str, tuple[int, str]] = {}
    errors: list[RowError] = []
    start = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            start = n
            continue
        if not line.startswith("#"):
            break
        start = n
        m = _META_RE.match(line)
        if m:
            meta[m.group(1)] = (n, m.group(2))
    for key in META_KEYS:
        if key not in meta:
            errors.append(RowError(name, 1, key, "missing_meta", f"文件开头须有 \"# {key}: …\" 行", f"the file must start with a \"# {key}: …\" line"))
    ver = meta.get("ver", (1, ""))[1]
    region = meta.get("insu_admdvs", (1, ""))[1]
    begin_text = meta.get("begndate", (1, ""))[1]
    if "ver" in meta and not _VER_RE.match(ver):
        errors.append(RowError(name, meta["ver"][0], "ver", "invalid_ver", "版本号应为1–40个字母、数字、点或连字符", "must be 1–40 letters, digits, dots or dashes"))
    if "insu_admdvs" in meta and not _REGION_RE.match(region):
        errors.append(RowError(name, meta["insu_admdvs"][0], "insu_admdvs", "invalid_region", "统筹区代码应为6位数字", "must be a 6-digit region code"))
    begndate = None
    if "begndate" in meta:
        try:
            begndate = date.fromisoformat(begin_text) if re.match(r"^\d{4}-\d{2}-\d{2}$", begin_text) else None
        except ValueError:
            begndate = None
        if begndate is None:
            errors.append(RowError(name, meta["begndate"][0], "begndate", "invalid_date", "日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD"))
    body = lines[start:]
    reader = csv.reader(body)
    header = next(reader, None)
    if header is None:
        errors.append(RowError(name, start + 1, "(header)", "no_header", f"缺少表头行：{','.join(COLUMNS)}", f"the header row is missing: {','.join(COLUMNS)}"))
        raise CatalogueFileError(errors)
    header = [h.strip() for h in header]
    rows: list[tuple[int, dict[str, str]]] = []
    for values in reader:
        line_no = start + reader.line_num
        if not any(v.strip() for v in values):
            continue
        row: dict = dict(zip(header, values))
        if len(values) > len(header):
            row[None] = values[len(header):]
        rows.append((line_no, row))
    try:
        entries = parse_rows(name, header, rows, start + 1)
    except CatalogueFileError as exc:
        errors.extend(exc.errors)
        entries = []
    if errors:
        raise CatalogueFileError(errors)
    assert begndate is not None
    return CatalogueFile(name, ver, region, begndate, tuple(entries), meta.get("note", (0, None))[1])


def header_line(note: str | None = None, *, ver: str, region: str, begndate: date) -> str:
    """The ``#`` lines and the header row a catalogue file starts with (the demo's generator writes them)."""
    out = [f"# ver: {ver}", f"# insu_admdvs: {region}", f"# begndate: {begndate.isoformat()}"]
    if note:
        out.append(f"# note: {note}")
    out.append(",".join(COLUMNS))
    return "\n".join(out) + "\n"
