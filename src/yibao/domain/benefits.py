"""Benefits onto the card (一卡多用, seed 001): the rules of another agency's subsidy batch. Pure.

A batch is the agency's list of (person, amount); each row is checked on its own and every refusal names its row, so
the agency corrects the list and sends it again as a whole (a batch is never half recorded: its total is what the
agency approved). A recorded batch is one credit per row, each one payment instruction to the card's bank, ending
credited or returned with the bank's reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable

from yibao.domain.errors import InputError
from yibao.domain.money import format_yuan, parse_yuan

MAX_ROWS = 10_000
OPEN = ("pending", "sending", "accepted")  # the bank has not said the last word
FINAL = ("credited", "returned")
CSV_COLUMNS = ("psn_no", "id_number", "amount")


@dataclass(frozen=True)
class Row:
    row: int  # from 1, as the agency numbers its list
    psn_no: str | None
    id_number: str | None
    amount: str


@dataclass(frozen=True)
class Refusal:
    row: int
    field: str
    code: str
    message_zh: str
    message_en: str

    def view(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}


class BatchRefused(InputError):
    """Rows refused: the batch is not recorded. ``details`` lists every refusal by row (the error shape carries them)."""

    def __init__(self, refusals: list[Refusal]) -> None:
        first = refusals[0]
        rows = "、".join(str(r.row) for r in refusals[:20]) + ("…" if len(refusals) > 20 else "")
        super().__init__(f"rows[{first.row}].{first.field}", "rows_refused",
                         f"{len(refusals)} 行被拒绝（第 {rows} 行），批次未登记；首个：第{first.row}行 {first.message_zh}",
                         f"{len(refusals)} row(s) refused (rows {rows.replace('、', ', ')}); the batch is not recorded; first: row "
                         f"{first.row}: {first.message_en}")
        self.details = [r.view() for r in refusals]


def amount_of(row: Row) -> int | Refusal:
    """The row's amount in fen, or why not (zero and below are refused by name)."""
    text = (row.amount or "").strip()
    if text.startswith("-"):
        return Refusal(row.row, "amount", "amount_not_positive", f"金额必须大于0：{text}", f"the amount must be above zero: {text!r}")
    try:
        fen = parse_yuan(text, "amount")
    except InputError as exc:
        return Refusal(row.row, "amount", exc.code, exc.message_zh, exc.message_en)
    if fen <= 0:
        return Refusal(row.row, "amount", "amount_not_positive", f"金额必须大于0：{text}", f"the amount must be above zero: {text!r}")
    return fen


def who_of(row: Row) -> Refusal | None:
    """A row names its person by psn_no or by ID number: exactly one of them."""
    if bool(row.psn_no) == bool(row.id_number):
        return Refusal(row.row, "psn_no", "person_unnamed", "每行须填写人员编号或身份证号之一", "each row names the person by psn_no or by "
                       "id_number, one of them")
    return None


def parse_csv(text: str) -> list[Row]:
    """The agency's list as CSV (UTF-8, a BOM allowed): a header naming psn_no and/or id_number, and amount (yuan)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError("file", "empty", "文件为空", "the file is empty") from None
    except csv.Error as exc:
        raise InputError("file", "invalid_csv", "CSV 表头无法读取", f"the CSV header cannot be read: {exc}") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "amount" not in header or not ({"psn_no", "id_number"} & set(header)):
        raise InputError("file", "invalid_header", f"表头应为 psn_no 或 id_number，及 amount；不认识：{','.join(unknown) or '-'}",
                         f"the header names psn_no or id_number, and amount; unknown: {','.join(unknown) or '-'}")
    rows = []
    try:
        for n, values in enumerate(reader, start=1):
            if not any(v.strip() for v in values):
                continue
            cells = dict(zip(header, (v.strip() for v in values)))
            rows.append(Row(n, cells.get("psn_no") or None, cells.get("id_number") or None, cells.get("amount", "")))
    except csv.Error as exc:
        raise InputError("file", "invalid_csv", f"CSV 第{reader.line_num}行无法读取", f"CSV line {reader.line_num} cannot be read: {exc}") from None
    return rows


def digest(agency: str, purpose: str, rows: Iterable[tuple[int, str, int]]) -> str:
    """What makes a batch the same batch: its agency, purpose and each row's person and fen."""
    body = json.dumps([agency, purpose, sorted(rows)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def summary(credits: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """Counts and totals to the fen by outcome: credited, returned, still open (status, amount pairs)."""
    out = {k: {"count": 0, "fen": 0} for k in ("credited", "returned", "open")}
    for status, amount in credits:
        key = status if status in FINAL else "open"
        out[key]["count"] += 1
        out[key]["fen"] += int(amount)
    total = sum(v["fen"] for v in out.values())
    return {"rows": sum(v["count"] for v in out.values()), "total": format_yuan(total),
            **{k: {"count": v["count"], "amount": format_yuan(v["fen"])} for k, v in out.items()}}
