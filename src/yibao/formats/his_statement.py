"""The files of 3202 对明细账 (research/books.md §1): the hospital's detail file, uploaded with 9101 — a zip holding one
UTF-8 ``.txt``, tab-separated, no header, one settlement a line, 7 columns ``setl_id, mdtrt_id, psn_no, medfee_sumamt,
fund_pay_sumamt, acct_pay, refd_setl_flag`` — and the platform's result file, fetched with 9102 — a zip holding
``result.txt``, tab-separated, the literal ``null`` for an empty cell, columns ``psn_no, mdtrt_id, setl_id, msgid,
stmt_rslt, refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay``."""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.domain.errors import InputError
from yibao.domain.his_statement import FORWARD, REVERSE, Period, ResultRow, Row, Totals, check_period
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats.catalogue_txt import zip_one

DETAIL_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
RESULT_COLUMNS = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo", "medfee_sumamt",
                  "fund_pay_sumamt", "acct_pay")
MAX_ROWS = 200_000  # [guess] a month of a large hospital's settlements is well under this; the upload is at most 5 MB anyway
MAX_TXT_BYTES = 32 * 1024 * 1024  # what 200,000 rows need with room: counted as it inflates, so a zip bomb stops there


def _signed_yuan(text: str, field: str, reverse: bool) -> int:
    """A reverse row's amounts are negative; some HIS write them positive with the flag alone saying so [?]: both read."""
    negative = text.startswith("-")
    fen = parse_yuan(text[1:] if negative else text, field)
    if negative and not reverse:
        raise InputError(field, "negative_forward_row", "正常结算行（refd_setl_flag=0）的金额不能为负",
                         "a forward row (refd_setl_flag 0) cannot carry a negative amount")
    return -fen if reverse else fen


def _lines(z: zipfile.ZipFile, info: zipfile.ZipInfo, field: str) -> Iterator[str]:
    """The entry's text a line at a time, counting the bytes it really inflates to: the size a zip claims is the
    sender's word (a zip bomb claims 10 bytes), so the cap is on what comes out, checked as it comes."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InputError(field, "detail_file_shape", "对明细账文件应为普通 zip（存储或 deflate 压缩）", "must be a plain zip (stored or deflated)")
    produced = 0
    with z.open(info) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None):
            produced += len(line)
            if produced > MAX_TXT_BYTES:
                raise InputError(field, "detail_file_too_large", "对明细账文件解压后过大", "is too large once unzipped")
            yield line


def read_detail(content: bytes, field: str = "file") -> list[Row]:
    """The hospital's rows; a malformed file is refused naming the line and the column."""
    try:
        z = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise InputError(field, "not_a_zip", "对明细账文件不是有效的 zip 压缩包", "is not a zip file") from None
    with z:
        names = [i for i in z.infolist() if not i.is_dir()]
        if len(names) != 1 or not names[0].filename.lower().endswith(".txt"):
            raise InputError(field, "detail_file_shape", "对明细账文件应为只含一个 .txt 文件的 zip 压缩包",
                             "must be a zip holding exactly one .txt file")
        rows: list[Row] = []
        try:
            for n, raw_line in enumerate(_lines(z, names[0], field), start=1):
                if n > MAX_ROWS + 1000:  # blank lines count too: a file of millions of empty lines is refused as well
                    raise InputError(field, "too_many_rows", f"对明细账文件最多 {MAX_ROWS} 行", f"holds at most {MAX_ROWS} rows")
                line = raw_line.rstrip("\r\n")
                if not line.strip():
                    continue
                if len(rows) >= MAX_ROWS:
                    raise InputError(field, "too_many_rows", f"对明细账文件最多 {MAX_ROWS} 行", f"holds at most {MAX_ROWS} rows")
                rows.append(_row(line, n, field))
        except UnicodeDecodeError:
            raise InputError(field, "not_utf8", "对明细账文件应为 UTF-8 编码", "must be UTF-8 text") from None
        except (zipfile.BadZipFile, EOFError, zlib.error):
            raise InputError(field, "not_a_zip", "对明细账文件不是有效的 zip 压缩包", "is not a zip file") from None
    return rows


def _row(line: str, n: int, field: str) -> Row:
    cells = line.split("\t")
    where = f"{field}[line {n}]"
    if len(cells) != len(DETAIL_COLUMNS):
        raise InputError(where, "wrong_column_count", f"第 {n} 行应有 {len(DETAIL_COLUMNS)} 列（制表符分隔），实有 {len(cells)} 列",
                         f"line {n} must have {len(DETAIL_COLUMNS)} tab-separated columns, not {len(cells)}")
    setl_id, mdtrt_id, psn_no, medfee, fund, acct, flag = (c.strip() for c in cells)
    if flag not in (FORWARD, REVERSE):
        raise InputError(f"{where}.refd_setl_flag", "invalid_flag", "退费结算标志应为 0 或 1", "must be 0 or 1")
    for name, value in (("setl_id", setl_id), ("mdtrt_id", mdtrt_id), ("psn_no", psn_no)):
        if not value or len(value) > 40:
            raise InputError(f"{where}.{name}", "invalid_text", "应为 1 到 40 个字符", "must be 1 to 40 characters")
    reverse = flag == REVERSE
    return Row(setl_id, mdtrt_id, psn_no, _signed_yuan(medfee, f"{where}.medfee_sumamt", reverse),
               _signed_yuan(fund, f"{where}.fund_pay_sumamt", reverse), _signed_yuan(acct, f"{where}.acct_pay", reverse), flag)


def write_detail(rows: list[Row], at: datetime, name: str = "detail.txt") -> bytes:
    """The hospital's side of the file (what a HIS builds; the tests and `yibao fsi call` use it)."""
    lines = ["\t".join((r.setl_id, r.mdtrt_id, r.psn_no, format_yuan(r.medfee), format_yuan(r.fund), format_yuan(r.acct), r.refd_setl_flag))
             for r in rows]
    return zip_one(name, "\n".join(lines).encode("utf-8"), at)


def _cell(value: str) -> str:
    return value if value else "null"


def write_result(rows: list[ResultRow], at: datetime) -> bytes:
    lines = ["\t".join(_cell(v) for v in (r.row.psn_no, r.row.mdtrt_id, r.row.setl_id, r.row.msgid, r.result, r.row.refd_setl_flag,
                                           r.memo, format_yuan(r.row.medfee), format_yuan(r.row.fund), format_yuan(r.row.acct)))
             for r in rows]
    return zip_one("result.txt", "\n".join(lines).encode("utf-8"), at)


def read_result(content: bytes) -> list[dict[str, str | None]]:
    """The result file back as rows by column name (``null`` → None): for HIS-side code and the tests."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        text = z.read("result.txt").decode("utf-8")
    return [{c: (None if v == "null" else v) for c, v in zip(RESULT_COLUMNS, line.split("\t"), strict=True)}
            for line in text.splitlines() if line]


# ---- the requests' fields (3201/3202 `input.data`, the REST bodies: the same national names) ------------------------

# insutype 险种类型 → yibao's insurance types; clr_type 清算类别 → visit kinds (99 其他: none of yibao's kinds [guess]).
INSURANCE_TYPES = {"310": ("employee",), "390": ("resident", "child")}
VISIT_KINDS = {"11": ("outpatient", "emergency"), "21": ("inpatient",), "41": ("pharmacy",), "99": ()}


def _text(d: dict[str, Any], key: str, field: str, max_length: int) -> str:
    value = d.get(key)
    if value is None or value == "":
        raise InputError(f"{field}.{key}", "required", "缺少必填字段", "is required")
    if not isinstance(value, str) or len(value) > max_length:
        raise InputError(f"{field}.{key}", "invalid_text", f"应为不超过{max_length}个字符的字符串", f"must be text of at most {max_length} characters")
    return value


def signed_fen(value: Any, field: str, *, required: bool = True) -> int:
    """A total in yuan (a JSON number or text, two decimals at most); negative allowed — a period whose cancellations
    outweigh its settlements."""
    if value is None or value == "":
        if required:
            raise InputError(field, "required", "缺少必填字段", "is required")
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InputError(field, "invalid_number", "应为金额（元，最多两位小数）", "must be an amount in yuan with at most 2 decimals")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InputError(field, "invalid_number", "应为金额（元，最多两位小数）", "must be an amount in yuan with at most 2 decimals") from None
    if not number.is_finite() or abs(number.adjusted()) > 15:
        raise InputError(field, "invalid_number", "金额超出范围", "the amount is out of range")
    fen = parse_yuan(format(abs(number), "f"), field)
    return -fen if number < 0 else fen


def count(value: Any, field: str) -> int:
    if value is None or value == "":
        raise InputError(field, "required", "缺少必填字段", "is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit() or len(str(value)) > 11:
        raise InputError(field, "invalid_count", "应为结算笔数（整数）", "must be a whole number of settlements")
    return int(value)


def _day(d: dict[str, Any], key: str, field: str) -> date:
    text = _text(d, key, field, 19)
    try:
        return datetime.strptime(text[:10], "%Y-%m-%d").date()
    except ValueError:
        raise InputError(f"{field}.{key}", "invalid_date", "日期格式应为 yyyy-MM-dd", "must be a date yyyy-MM-dd") from None


def period(d: dict[str, Any], field: str, *, insutype_required: bool) -> Period:
    begin, end = _day(d, "stmt_begndate", field), _day(d, "stmt_enddate", field)
    check_period(begin, end, field)
    optins = _text(d, "setl_optins", field, 6)
    if not (len(optins) == 6 and optins.isdigit()):
        raise InputError(f"{field}.setl_optins", "invalid_admdvs", "结算经办机构应为 6 位行政区划代码", "must be a 6-digit area code")
    insutype = d.get("insutype")
    if insutype in (None, "") and insutype_required:
        raise InputError(f"{field}.insutype", "required", "缺少必填字段", "is required")
    if insutype not in (None, "") and insutype not in INSURANCE_TYPES:
        raise InputError(f"{field}.insutype", "invalid_insutype", "险种类型应为 310 或 390", "must be 310 or 390")
    clr_type = d.get("clr_type")
    if clr_type not in (None, "") and clr_type not in VISIT_KINDS:
        raise InputError(f"{field}.clr_type", "invalid_clr_type", "清算类别应为 11（门诊）、21（住院）、41（药店）或 99（其他）",
                         "must be 11 (outpatient), 21 (inpatient), 41 (pharmacy) or 99 (other)")
    return Period(optins, begin, end, INSURANCE_TYPES[insutype] if insutype not in (None, "") else None,
                  VISIT_KINDS[clr_type] if clr_type not in (None, "") else None)


def totals(d: dict[str, Any], field: str, *, detail: bool) -> Totals:
    """3201's totals (medfee, fund, account, count) or 3202's declared ones (medfee, fund, cash, count)."""
    return Totals(signed_fen(d.get("medfee_sumamt"), f"{field}.medfee_sumamt"), signed_fen(d.get("fund_pay_sumamt"), f"{field}.fund_pay_sumamt"),
                  0 if detail else signed_fen(d.get("acct_pay"), f"{field}.acct_pay"),
                  signed_fen(d.get("cash_payamt"), f"{field}.cash_payamt", required=False) if detail else 0,
                  count(d.get("fixmedins_setl_cnt"), f"{field}.fixmedins_setl_cnt"))


def row_of(item: Any, field: str) -> Row:
    """One detail row given as an object (the REST body) instead of a file line."""
    if not isinstance(item, dict):
        raise InputError(field, "invalid_object", "应为 JSON 对象", "must be a JSON object")
    flag = item.get("refd_setl_flag", FORWARD)
    if flag not in (FORWARD, REVERSE):
        raise InputError(f"{field}.refd_setl_flag", "invalid_flag", "退费结算标志应为 0 或 1", "must be 0 or 1")
    ids = [_text(item, k, field, 40) for k in ("setl_id", "mdtrt_id", "psn_no")]
    amounts = []
    for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay"):
        fen = signed_fen(item.get(k), f"{field}.{k}")
        if fen < 0 and flag == FORWARD:
            raise InputError(f"{field}.{k}", "negative_forward_row", "正常结算行（refd_setl_flag=0）的金额不能为负",
                             "a forward row (refd_setl_flag 0) cannot carry a negative amount")
        amounts.append(-abs(fen) if flag == REVERSE else fen)
    return Row(ids[0], ids[1], ids[2], amounts[0], amounts[1], amounts[2], flag)


def result_view(r: ResultRow) -> dict[str, Any]:
    return {"setl_id": r.row.setl_id, "mdtrt_id": r.row.mdtrt_id, "psn_no": r.row.psn_no, "msgid": r.row.msgid or None,
            "refd_setl_flag": r.row.refd_setl_flag, "stmt_rslt": r.result, "reason": r.reason, "memo": r.memo,
            "medfee_sumamt": format_yuan(r.row.medfee), "fund_pay_sumamt": format_yuan(r.row.fund), "acct_pay": format_yuan(r.row.acct)}
