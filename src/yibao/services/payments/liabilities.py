"""Backstop liability (兜底责任, seed 002, Zhejiang): a hospital answers to the fund for fund losses caused
by mobile payment, with recourse to the payment institution.

`record` charges the hospital in one unit: the loss (≤ the order's fund share, less what earlier
liabilities of the order already charged) is a ledger transfer **from the hospital's receivable back to
the fund** — layer by layer in the order the fund paid (pool, serious illness, large amount,
assistance), through the regions' clearing accounts when the patient is insured elsewhere, so each
region's books still balance. `recourse` records what the hospital recovered from the payment
institution (our books do not move: that money passes between the two of them). Both are audited.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.ledger import clearing_account, fund_account, institution_receivable
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.books import audit, ledger
from yibao.services.payments import orders as payments
from yibao.store.tables import backstop_liabilities as L
from yibao.store.tables import liability_recourses as RC
from yibao.store.tables import settlements as S

LAYERS = (("pool", "pool_fund"), ("serious_illness", "serious_illness"), ("large_amount", "large_amount"), ("other", "other"),
          ("assistance", "assistance"))


def _charged(conn: Connection, order_id: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(L.c.amount), 0)).where(L.c.order_id == order_id)).scalar())


def record(conn: Connection, now: datetime, *, order_id: str, amount: int, cause: str, actor: str) -> dict[str, Any]:
    order = payments.get(conn, order_id, lock=True)
    if order is None:
        raise NotFound("payment_id", "not_found", "支付单不存在", "payment not found")
    if order.status not in po.PAID or order.setl_id is None:
        raise Conflict("payment_id", "payment_not_paid", "该支付未完成，不存在基金损失", "the payment did not complete: no fund money moved")
    if amount <= 0:
        raise InputError("amount", "not_positive", "金额必须大于0", "the amount must be greater than 0")
    if not cause.strip():
        raise InputError("cause", "cause_required", "请说明损失原因", "give the cause of the loss")
    before = _charged(conn, order.id)
    if before + amount > order.fund_total:
        raise Conflict("amount", "exceeds_fund_share", f"超出该支付的基金支付部分（尚可认定 {format_yuan(order.fund_total - before)} 元）",
                       f"more than the payment's fund share (at most {format_yuan(order.fund_total - before)} more)")
    s = conn.execute(select(S).where(S.c.id == order.setl_id)).one()
    insured, treated = s.insured_region, s.region
    receivable = institution_receivable(order.institution_id)
    liability_id = f"LB{now:%Y%m%d}{secrets.token_hex(6).upper()}"
    legs: list[ledger.Leg] = []
    start, end, offset = before, before + amount, 0  # this charge covers [before, before + amount) of the layers in order
    for layer, column in LAYERS:
        share = int(getattr(s, column))
        part = max(0, min(end, offset + share) - max(start, offset))
        offset += share
        if part == 0:
            continue
        fund = fund_account(insured, layer)
        if insured == treated:
            legs.append(ledger.Leg(f"{liability_id}:{layer}", receivable, fund, part, treated))
        else:
            legs.append(ledger.Leg(f"{liability_id}:{layer}", receivable, clearing_account(treated, insured), part, treated))
            legs.append(ledger.Leg(f"{liability_id}:{layer}:cleared", clearing_account(insured, treated), fund, part, insured))
    ledger.post_many(conn, legs, code="backstop_liability", ref=liability_id, now=now)
    conn.execute(L.insert().values(id=liability_id, region=order.region, order_id=order.id, institution_id=order.institution_id,
                                   payment_institution_id=order.payment_institution_id, amount=amount, cause=cause.strip(), recovered=0,
                                   status="charged", actor=actor, updated_at=now, created_at=now))
    audit.append(conn, region=order.region, actor=actor, action="liability.charge", subject=liability_id,
                 detail={"payment": order.id, "institution": order.institution_id, "payment_institution": order.payment_institution_id,
                         "amount": amount, "cause": cause.strip()}, now=now)
    return view(conn, liability_id)


def recourse(conn: Connection, now: datetime, *, liability_id: str, amount: int, note: str | None, actor: str) -> dict[str, Any]:
    row = conn.execute(select(L).where(L.c.id == liability_id).with_for_update()).first()
    if row is None:
        raise NotFound("liability_id", "not_found", "兜底责任记录不存在", "liability not found")
    if row.payment_institution_id is None:
        raise Conflict("liability_id", "no_payment_institution", "该支付没有支付机构参与，无从追偿", "no payment institution took part: no recourse")
    if amount <= 0:
        raise InputError("amount", "not_positive", "金额必须大于0", "the amount must be greater than 0")
    left = int(row.amount) - int(row.recovered)
    if amount > left:
        raise Conflict("amount", "exceeds_liability", f"超出尚未追回的金额（{format_yuan(left)} 元）", f"more than is left to recover ({format_yuan(left)})")
    recovered = int(row.recovered) + amount
    conn.execute(RC.insert().values(region=row.region, liability_id=row.id, amount=amount, note=note, actor=actor, created_at=now))
    conn.execute(update(L).where(L.c.id == row.id).values(recovered=recovered, status="recovered" if recovered == int(row.amount) else "recovering",
                                                          updated_at=now))
    audit.append(conn, region=row.region, actor=actor, action="liability.recourse", subject=row.id,
                 detail={"payment_institution": row.payment_institution_id, "amount": amount, "recovered": recovered}, now=now)
    return view(conn, row.id)


def view(conn: Connection, liability_id: str) -> dict[str, Any]:
    row = conn.execute(select(L).where(L.c.id == liability_id)).first()
    if row is None:
        raise NotFound("liability_id", "not_found", "兜底责任记录不存在", "liability not found")
    recourses = conn.execute(select(RC).where(RC.c.liability_id == row.id).order_by(RC.c.id)).all()
    return {"liability_id": row.id, "region": row.region, "payment_id": row.order_id, "fixmedins_code": row.institution_id,
            "payment_institution_id": row.payment_institution_id, "amount": format_yuan(int(row.amount)), "cause": row.cause,
            "recovered": format_yuan(int(row.recovered)), "outstanding": format_yuan(int(row.amount) - int(row.recovered)),
            "status": row.status, "actor": row.actor, "created_at": iso_utc(row.created_at), "updated_at": iso_utc(row.updated_at),
            "recourses": [{"amount": format_yuan(int(r.amount)), "note": r.note, "actor": r.actor, "at": iso_utc(r.created_at)}
                          for r in recourses]}


def listing(conn: Connection, *, region: str | None, institution_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(L.c.id)
    if region is not None:
        q = q.where(L.c.region == region)
    if institution_id is not None:
        q = q.where(L.c.institution_id == institution_id)
    return [view(conn, i) for i in conn.execute(q.order_by(L.c.created_at.desc(), L.c.id).limit(limit)).scalars().all()]
