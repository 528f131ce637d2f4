"""Insured people and guardians (the phone app): log in, see the account, family members' data.

Authentication: `Authorization: Bearer <session token>` from `POST /api/v1/patient/sessions`.
A holder sees only their own data and their linked family members'.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field
from sqlalchemy.engine import Connection

from yibao.api.context import Caller, Platform, patient_caller, platform
from yibao.api.schemas import Strict
from yibao.domain.errors import NotFound
from yibao.domain.ledger import person_account
from yibao.domain.money import format_yuan
from yibao.services import families, ledger, people, sessions

router = APIRouter(prefix="/api/v1/patient", tags=["patient 参保人"])
PsnNo = Path(min_length=1, max_length=24)


class SmsCodeIn(Strict):
    phone: str = Field(min_length=1, max_length=20, examples=["13800000001"])


class SessionIn(Strict):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(min_length=1, max_length=10)


@router.post("/sms-codes", summary="获取登录验证码 Send a log-in code (sandbox SMS)")
async def sms_code(body: SmsCodeIn, p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: sessions.send_code(c, p.keyring, now, phone=body.phone))


@router.post("/sessions", status_code=201, summary="登录 Log in with the SMS code")
async def login(body: SessionIn, p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: sessions.verify_code(c, p.keyring, now, phone=body.phone, code=body.code))


def _visible(conn: Connection, caller: Caller, psn_no: str) -> people.Person:
    if not families.can_view(conn, caller.principal, psn_no):
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return people.require(conn, psn_no)


@router.get("/me", summary="本人信息 Who I am")
async def me(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: people.masked_view(people.require(c, caller.principal), p.keyring), write=False)


@router.get("/persons/{psn_no}", summary="本人或家庭成员信息 Me or a linked family member")
async def person(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: people.masked_view(_visible(c, caller, psn_no), p.keyring), write=False)


@router.get("/persons/{psn_no}/account", summary="个人账户余额 Personal-account balance")
async def account(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        acct = person_account(psn_no)
        return {"psn_no": psn_no, "balance": format_yuan(ledger.balance(c, acct)), "available": format_yuan(ledger.available(c, acct))}
    return await p.run(work, write=False)


@router.get("/persons/{psn_no}/account/transactions", summary="账户明细 Account transactions, newest first")
async def transactions(psn_no: str = PsnNo, limit: int = Query(50, ge=1, le=200), before_id: int | None = Query(None, ge=1),
                       caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        items = ledger.history(c, person_account(psn_no), limit=limit, before_id=before_id)
        return {"psn_no": psn_no, "items": [{"id": t.id, "at": t.created_at.isoformat(), "amount": format_yuan(signed), "code": t.code,
                                             "ref": t.ref} for t, signed in items]}
    return await p.run(work, write=False)


@router.get("/persons/{psn_no}/account/statements/{year}/{month}", summary="月度账单 Monthly statement")
async def statement(psn_no: str = PsnNo, year: int = Path(ge=2000, le=2100), month: int = Path(ge=1, le=12),
                    caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        s = ledger.monthly_statement(c, person_account(psn_no), year, month)
        return {"psn_no": psn_no, "year": year, "month": month, "opening": format_yuan(s.opening), "credits": format_yuan(s.credits),
                "debits": format_yuan(s.debits), "closing": format_yuan(s.closing),
                "lines": [{"at": t.created_at.isoformat(), "amount": format_yuan(a), "code": t.code, "ref": t.ref} for t, a in s.lines]}
    return await p.run(work, write=False)
