"""Monthly clearing over the national interface (docs/fsi.md, docs/clearing.md): 3203 清算申请 (apply for an ended month),
3204 清算申请撤销 (withdraw, while not yet accepted), 3205A 清算申请状态查询 (clr_stas 10 / 20 / 50). Thin handlers over
services/clearing/applications.py — the same calls as the REST routes in api/routers/his.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError, YibaoError
from yibao.domain.money import parse_yuan
from yibao.formats.fsi import Number, amount, inf_time
from yibao.fsi import codes
from yibao.fsi.transactions import Call, _section, _text, handles
from yibao.services.clearing import applications as clearing

_AMOUNTS = ("medfee_sumamt", "med_sumfee", "fund_appy_sum", "cash_payamt", "acct_pay")


def _yuan(d: dict[str, Any], key: str) -> int:
    field = f"input.data.{key}"
    text = codes.yuan_text(d.get(key), field)
    if text is None:
        raise InputError(field, "required", "缺少必填字段", "is required")
    return parse_yuan(text, field)


def _day(d: dict[str, Any], key: str) -> date:
    value = d.get(key)
    try:  # yyyy-MM-dd, or with a time after it as some HIS send
        if isinstance(value, str) and len(value) >= 10:
            return date.fromisoformat(value[:10])
    except ValueError:
        pass
    raise InputError(f"input.data.{key}", "invalid_date", "日期应为 yyyy-MM-dd", "must be a date yyyy-MM-dd")


def _count(d: dict[str, Any], key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())) \
            or not 0 <= int(value) <= 10**9:
        raise InputError(f"input.data.{key}", "invalid_count", "应为非负整数", "must be a non-negative whole number")
    return int(value)


def _renamed(exc: YibaoError) -> YibaoError:
    if exc.field and not exc.field.startswith("input."):
        exc.field = f"input.data.{exc.field}"
    return exc


def _app_id(d: dict[str, Any]) -> str:
    # Jilin's 3204A spells it clr_apply_evt_id (research/books.md §1): both are read
    key = "clr_appy_evt_id" if d.get("clr_appy_evt_id") not in (None, "") or "clr_apply_evt_id" not in d else "clr_apply_evt_id"
    value = _text(d, key, "input.data", max_length=32)
    assert value is not None
    return value


@handles("3203", "3203A")
def apply(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    clr_optins = d.get("clr_optins")
    if clr_optins not in (None, "", call.institution.region):  # 3203A names the clearing agency: only the institution's own region's
        raise InputError("input.data.clr_optins", "not_the_region", "清算经办机构应为本机构所在统筹区", "must be the institution's own region")
    try:
        view = clearing.apply(conn, call.now, institution=call.institution, clr_type=_text(d, "clr_type", "input.data", max_length=3),  # type: ignore[arg-type]
                              clr_way=_text(d, "clr_way", "input.data", max_length=3), setlym=_text(d, "setlym", "input.data", max_length=6),  # type: ignore[arg-type]
                              psntime=_count(d, "psntime"), begndate=_day(d, "begndate"), enddate=_day(d, "enddate"), actor=call.actor,
                              **{k: _yuan(d, k) for k in _AMOUNTS})
    except YibaoError as exc:
        raise _renamed(exc) from None
    return {"result": {"clr_appy_evt_id": view["clr_appy_evt_id"]}}


@handles("3204", "3204A")
def withdraw(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    try:
        view = clearing.withdraw(conn, call.now, institution=call.institution, app_id=_app_id(d), actor=call.actor)
    except YibaoError as exc:
        raise _renamed(exc) from None
    return {"result": {"clr_appy_evt_id": view["clr_appy_evt_id"], "status": view["status"]}}


def _money(text: str | None) -> Number | None:
    return None if text is None else amount(parse_yuan(text))


@handles("3205A")
def status(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    try:
        v = clearing.status(conn, institution=call.institution, app_id=_app_id(d))
    except YibaoError as exc:
        raise _renamed(exc) from None
    return {"result": {"clr_appy_evt_id": v["clr_appy_evt_id"], "clr_stas": v["clr_stas"], "status": v["status"],
                       "hi_agre_sumfee": _money(v["hi_agre_sumfee"]), "fund_appy_sum": _money(v["fund_appy_sum"]),
                       "payable": _money(v["payable"]), "deposit": _money(v["deposit"]), "recoveries": _money(v["recoveries"]),
                       "opt_time": inf_time(datetime.fromisoformat(v["opt_time"])), "clr_ym": v["clr_ym"], "clr_type": v["clr_type"], "optins_no": v["region"]}}
