"""Refunds of completed payment orders: the units (none calls an institution), and `refund`/`drive`, which ask the
institution for the cash back between them.

A refund gives back one or both parts of a payment, exactly:
- ``insurance``: every fund and account leg reversed (clearing legs too) and the year's accumulators
  given back — our own books, no call (`settlement.refund_part(..., "insurance")`);
- ``cash``: the institution is asked to refund the cash (`Channel.refund` with our own out_refund_no = the
  refund's id), and only when it says so is the cash leg reversed;
- ``all``: both, in the unit that records the institution's success — so a refused or unknown cash refund
  never leaves the insurance half given back on its own;
- ``items``: some items (feedetl_sn) of the payment, ONE refund, no new payment and no PIN: the settlement's other
  items are priced again by the engine (`settlement.price_items_refund`) and each leg — the fund's layers, the
  account, the cash — gives back its difference; the institution is asked for that cash only (a partial amount,
  same out_refund_no rule), and on its success the legs move (`settlement.refund_items`). More refunds of items (or
  ``all``, the rest) may follow; every leg satisfies paid = given back + remaining, to the fen (docs/payments.md).

The order moves `completed`/`partially_refunded` → `refunding` (recorded before the call) → `refunded`
(nothing left), `partially_refunded` (one part left) or back (the institution refused). While the answer
is unknown the refund stays `unknown` and is asked about (`query_refund`) — by a retry of the same
request or by recovery; the institution's refund is idempotent by out_refund_no, so asking again never
refunds twice. One refund at a time per order.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.base import (
    BadSignature,
    ChannelError,
    Declined,
    NotFoundAtChannel,
    OutcomeUnknown,
    RefundRequest,
    RefundResult,
    sent_at_kw,
    unknown,
)
from yibao.domain import payment_order as po
from yibao.domain import pilot as pilot_rules
from yibao.domain.bill import Accumulators
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.agency import institutions, pilots
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.services.care import presence, settlement, visits
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import medins
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.store.rows import one_or
from yibao.store.tables import payment_refunds as R

log = logging.getLogger("yibao.payments")

SCOPES = ("all", "cash", "insurance", "items")
OUTCOMES = ("succeeded", "failed", "unknown")
# [guess] a wallet order's cash refund: the hospital refunds at the wallet at once (WeChat shows SELF_PAY_REFUND when it
# accepts the refund); not seen within this, the refund failed and the order is refundable again (`_drive_wallet`)
WALLET_REFUND_WAIT = timedelta(hours=24)
REASON = "医保支付退款"  # what the institution shows: no names, no numbers
# Why the hospital refunds, for our own audit trail (never sent to the institution): codes, so no free
# text with names or diagnoses lands in the log.
REASONS = ("patient_request", "items_returned", "duplicate_charge", "wrong_charge", "other")


@dataclass(frozen=True)
class Refund:
    id: str
    order_id: str
    institution_id: str
    request_key: str
    request_hash: str
    scope: str
    status: str
    insurance_fen: int
    cash_fen: int
    refund_no: str | None
    error_code: str | None
    updated_at: datetime
    created_at: datetime
    lines_to_keep: tuple[str, ...] | None = None
    rebill_order_id: str | None = None
    items: tuple[str, ...] | None = None  # scope items: the feedetl_sn refunded
    legs: dict[str, int] | None = None  # scope items: fen given back of each leg (settlement.LEGS)
    accumulator_delta: dict[str, int] | None = None  # scope items: the remaining items' delta to the year's totals

    @property
    def final(self) -> bool:
        return self.status in ("succeeded", "failed")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _refund(r: Any) -> Refund:
    return Refund(r.id, r.order_id, r.institution_id, r.request_key, r.request_hash, r.scope, r.status, int(r.insurance_fen),
                  int(r.cash_fen), r.refund_no, r.error_code, _utc(r.updated_at), _utc(r.created_at),
                  tuple(json.loads(r.lines_to_keep)) if r.lines_to_keep else None, r.rebill_order_id,
                  tuple(json.loads(r.items)) if r.items else None, json.loads(r.legs) if r.legs else None,
                  json.loads(r.accumulator_delta) if r.accumulator_delta else None)


def get(conn: Connection, refund_id: str, *, lock: bool = False) -> Refund:
    return _refund(one_or(conn, R, R.c.id == refund_id, lock=lock, missing=NotFound("refund_id", "not_found", "退款记录不存在", "refund not found")))


def for_order(conn: Connection, order_id: str) -> list[Refund]:
    return [_refund(r) for r in conn.execute(select(R).where(R.c.order_id == order_id).order_by(R.c.created_at, R.c.id)).all()]


def left(conn: Connection, order: Order) -> tuple[int, int]:
    """(insurance, cash) not given back yet, fen: the order's shares less what succeeded refunds gave back."""
    done = [r for r in for_order(conn, order.id) if r.status == "succeeded"]
    return (order.fund_total + order.account_pay - sum(r.insurance_fen for r in done), order.cash_pay - sum(r.cash_fen for r in done))


def given_back(conn: Connection, order: Order) -> tuple[bool, bool]:
    """(insurance given back, cash given back): all of it by succeeded refunds, or nothing to give back."""
    insurance, cash = left(conn, order)
    return insurance <= 0, cash <= 0


def _legs_of(refund: Refund) -> dict[str, int]:
    """What a refund gives back of each leg (settlement.LEGS): its own legs (items), else the whole parts it names."""
    if refund.legs is not None:
        return {name: int(refund.legs.get(name, 0)) for name in settlement.LEGS}
    return {}


def summary(conn: Connection, order: Order) -> dict[str, Any]:
    """The payment's legs as paid, given back (by succeeded refunds) and remaining, fen, from the ledger: the fund (by
    layer and total), the account and the cash. paid = refunded + remaining for every leg. A wallet's cash never
    passes our books (nor a credit line's): its cash is the order's, given back by the refunds that recorded it."""
    legs = settlement.legs_left(conn, order.setl_id) if order.setl_id else {name: (0, 0) for name in settlement.LEGS}
    out: dict[str, dict[str, int]] = {"paid": {}, "refunded": {}, "remaining": {}}
    for name, (paid, back) in legs.items():
        out["paid"][name], out["refunded"][name], out["remaining"][name] = paid, back, paid - back
    if order.cash_source is not None:  # a wallet's or a credit line's cash: not a ledger leg of the settlement
        back = order.cash_pay - left(conn, order)[1]
        out["paid"]["cash"], out["refunded"]["cash"], out["remaining"]["cash"] = order.cash_pay, back, order.cash_pay - back
    for part in out.values():
        part["fund"] = sum(part[name] for name in settlement.INSURANCE_LEGS if name != "account")
        part["total"] = part["fund"] + part["account"] + part["cash"]
    return out


def start(conn: Connection, now: datetime, *, institution: Institution, order_id: str, request_key: str, request_hash: str, scope: str,
          actor: str, lines_to_keep: list[str] | None = None, reason: str | None = None, items: list[str] | None = None) -> Refund:
    """Record the refund and move the order to ``refunding`` (before any call). Nothing to ask the institution (insurance
    only, or items whose cash share is 0): done here, in this unit. ``reason`` (one of REASONS) goes into the audit log
    with the request. ``items`` (scope ``items``): the feedetl_sn refunded, priced here (`_start_items`)."""
    existing = conn.execute(select(R).where(R.c.institution_id == institution.id, R.c.request_key == request_key)).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                           "this Idempotency-Key was already used for a different request")
        return _refund(existing)
    if scope not in SCOPES:
        raise InputError("scope", "invalid_scope", "退款范围应为 all、cash、insurance 或 items", "scope must be all, cash, insurance or items")
    if (scope == "items") != (items is not None):
        raise InputError("items", "items_need_scope_items", "按项目退款时 scope 应为 items，并列出要退的明细（items）",
                         "a refund of some items takes scope items and the items (feedetl_sn) to refund")
    if items is not None and lines_to_keep is not None:
        raise InputError("items", "items_and_lines_to_keep", "items 与 lines_to_keep 只能用其一", "give items or lines_to_keep, not both")
    if reason is not None and reason not in REASONS:
        raise InputError("reason", "invalid_reason", "退款原因无效", "not a valid refund reason")
    payments.for_institution(conn, institution.id, order_id)  # the hospital's own payment, else not found
    order = payments.require(conn, order_id, lock=True)
    if order.status == po.REFUNDING:
        raise Conflict("payment_id", "refund_in_progress", "该支付有退款正在处理中", "a refund of this payment is in progress")
    if order.status == po.REFUNDED:
        raise Conflict("scope", "already_refunded", "该支付已全额退款", "this payment was refunded in full")
    if order.status not in (po.COMPLETED, po.PARTIALLY_REFUNDED):
        raise Conflict("payment_id", "not_refundable", f"支付单状态为 {order.status}，不能退款", f"a {order.status} payment cannot be refunded")
    if scope == "items":
        return _start_items(conn, now, institution=institution, order=order, request_key=request_key, request_hash=request_hash,
                            items=items or [], actor=actor, reason=reason)
    if lines_to_keep is not None and order.cash_source == "wallet":
        raise Conflict("lines_to_keep", "lines_refund_not_for_wallet",
                       "钱包医保移动支付订单不能按明细退款（lines_to_keep）：请医院全额退款，再以新的 payAuthNo 重新 6201 上传保留的明细",
                       "lines_to_keep is refused for a wallet's medical-insurance order: the hospital refunds it in full and "
                       "uploads the kept lines again in a new 6201 with a fresh pay_auth_no")
    if lines_to_keep is not None:
        _check_lines(conn, order, scope, lines_to_keep)
        # The kept lines are paid again by the same mode (`_rebill`): only under an agreement in force. Checked here,
        # before anything is refunded; a full refund and counter settlement stay open to a suspended institution.
        pilots.require(conn, now, institution_id=institution.id, mode=pilot_rules.mode_of_method(order.method))
        scope = "lines"
    insurance_left, cash_left = left(conn, order)
    insurance_done, cash_done = insurance_left <= 0, cash_left <= 0
    # Items are refunded from a payment nothing was given back of yet. (Not "insurance_done or cash_done":
    # those are also true of a part that was 0 — a payment whose account paid all has no cash to give back.)
    if scope == "lines" and any(r.status == "succeeded" for r in for_order(conn, order.id)):
        raise Conflict("lines_to_keep", "already_partly_refunded", "该支付已部分退款，不能再按明细退款",
                       "part of this payment was refunded: it cannot be refunded by items any more")
    want_insurance = scope in ("all", "insurance", "lines") and not insurance_done
    want_cash = scope in ("all", "cash", "lines") and not cash_done
    if want_cash and order.cash_source == "credit":
        raise Conflict("scope", "credit_refund_unsupported", "信用支付的现金部分暂不支持退款（请与银行办理），可仅退医保部分",
                       "the cash of a credit payment cannot be refunded here yet (the bank handles it); refund the insurance part")
    if not (want_insurance or want_cash):
        raise Conflict("scope", "already_refunded", "该部分已退款或无可退金额", "that part was already refunded or has nothing to refund")
    refund_id = f"RF{now:%Y%m%d}{secrets.token_hex(7).upper()}"
    conn.execute(R.insert().values(id=refund_id, region=order.region, order_id=order.id, institution_id=institution.id,
                                   request_key=request_key, request_hash=request_hash, scope=scope, status="requested",
                                   insurance_fen=insurance_left if want_insurance else 0,
                                   cash_fen=cash_left if want_cash else 0, updated_at=now, created_at=now,
                                   lines_to_keep=json.dumps(sorted(lines_to_keep)) if lines_to_keep is not None else None))
    payments.move(conn, order, po.REFUND_REQUESTED, now, actor)
    if reason is not None:
        audit.append(conn, region=order.region, actor=actor, action="refund.reason", subject=refund_id,
                     detail={"payment": order.id, "scope": scope, "reason": reason}, now=now)
    if not want_cash:  # nothing to ask an institution: give the insurance part back now
        return record(conn, now, refund_id=refund_id, outcome="succeeded", actor=actor)
    return get(conn, refund_id)


def _require_items_refundable(order: Order) -> None:
    """Items are refunded only of a payment whose cash an institution collected (a wallet's or a credit line's cash is
    refunded whole), and which has its settlement."""
    if order.cash_source is not None:
        raise Conflict("items", "items_refund_not_for_source",
                       "该支付的现金不经支付机构收取（钱包医保订单或信用支付），不能按项目退款：请全额退款",
                       "this payment's cash was not collected by a payment institution (a wallet's order or a credit line): "
                       "refund it in full instead")
    assert order.setl_id is not None


def _start_items(conn: Connection, now: datetime, *, institution: Institution, order: Order, request_key: str, request_hash: str,
                 items: list[str], actor: str, reason: str | None) -> Refund:
    """A refund of some items: priced now (the rest by the engine; what each leg gives back), recorded with its legs."""
    _require_items_refundable(order)
    priced = settlement.price_items_refund(conn, setl_id=order.setl_id, items=items, lock=True)
    insurance = sum(priced.legs[name] for name in settlement.INSURANCE_LEGS)
    cash = priced.legs["cash"]
    refund_id = f"RF{now:%Y%m%d}{secrets.token_hex(7).upper()}"
    conn.execute(R.insert().values(id=refund_id, region=order.region, order_id=order.id, institution_id=institution.id,
                                   request_key=request_key, request_hash=request_hash, scope="items", status="requested",
                                   insurance_fen=insurance, cash_fen=cash, updated_at=now, created_at=now,
                                   items=json.dumps(sorted(items)), legs=json.dumps(priced.legs),
                                   accumulator_delta=json.dumps(priced.accumulator_delta.as_dict())))
    payments.move(conn, order, po.REFUND_REQUESTED, now, actor)
    audit.append(conn, region=order.region, actor=actor, action="refund.items", subject=refund_id,
                 detail={"payment": order.id, "items": sorted(items), "legs": {k: v for k, v in priced.legs.items() if v},
                         **({"reason": reason} if reason is not None else {})}, now=now)
    if not cash:  # nothing to ask an institution: give the insurance legs back now
        return record(conn, now, refund_id=refund_id, outcome="succeeded", actor=actor)
    return get(conn, refund_id)


def preview(conn: Connection, *, institution: Institution, order_id: str, items: list[str]) -> dict[str, Any]:
    """What a refund of ``items`` would give back of each leg, and what would remain, priced as `start` would (nothing is
    written): the cashier's form shows it before the refund is confirmed."""
    order = payments.for_institution(conn, institution.id, order_id)
    if order.status not in (po.COMPLETED, po.PARTIALLY_REFUNDED):
        raise Conflict("payment_id", "not_refundable", f"支付单状态为 {order.status}，不能退款", f"a {order.status} payment cannot be refunded")
    _require_items_refundable(order)
    priced = settlement.price_items_refund(conn, setl_id=order.setl_id, items=items, lock=False)
    return {"payment_id": order.id, "items": sorted(items), "legs": leg_view(priced.legs), "remaining": leg_view(priced.remaining)}


def leg_view(legs: dict[str, int]) -> dict[str, Any]:
    fund = sum(legs.get(name, 0) for name in settlement.INSURANCE_LEGS if name != "account")
    return {"fund": {**{name: format_yuan(legs.get(name, 0)) for name in settlement.INSURANCE_LEGS if name != "account"},
                     "total": format_yuan(fund)},
            "account": format_yuan(legs.get("account", 0)), "cash": format_yuan(legs.get("cash", 0)),
            "total": format_yuan(fund + legs.get("account", 0) + legs.get("cash", 0))}


def record(conn: Connection, now: datetime, *, refund_id: str, outcome: str, refund_no: str | None = None, error_code: str | None = None,
           actor: str) -> Refund:
    """The institution's answer about the cash (or, for insurance only, the refund itself): give back, go back, or keep asking."""
    if outcome not in OUTCOMES:
        raise ValueError(outcome)
    refund = get(conn, refund_id, lock=True)
    if refund.final:
        return refund
    order = payments.require(conn, refund.order_id, lock=True)
    if outcome == "unknown":
        conn.execute(update(R).where(R.c.id == refund.id).values(status="unknown", updated_at=now))
        payments.move(conn, order, po.REFUND_UNKNOWN, now, actor)
        return get(conn, refund.id)
    if outcome == "failed":
        partly = any(r.status == "succeeded" for r in for_order(conn, order.id))
        conn.execute(update(R).where(R.c.id == refund.id).values(status="failed", error_code=error_code, refund_no=refund_no, updated_at=now,
                                                                 completed_at=now))
        payments.move(conn, order, po.REFUND_FAILED_AFTER_PART if partly else po.REFUND_FAILED, now, actor)
        return get(conn, refund.id)
    assert order.setl_id is not None
    if refund.scope == "items":
        assert refund.items is not None and refund.legs is not None and refund.accumulator_delta is not None
        settlement.refund_items(conn, now, setl_id=order.setl_id, refund_id=refund.id, items=list(refund.items), legs=_legs_of(refund),
                                accumulator_delta=Accumulators(**refund.accumulator_delta), actor=actor)
    elif refund.insurance_fen or refund.scope != "cash" or given_back(conn, order)[0]:
        # Also with nothing of the fund or account to give back (a bill inside the deductible): the year's totals it moved
        # are given back with the insurance part (refund_part gives them back once: the settlement's delta is then zero).
        settlement.refund_part(conn, now, setl_id=order.setl_id, part="insurance", refund_id=refund.id, actor=actor)
    if refund.scope != "items" and refund.cash_fen and order.cash_source != "wallet":  # a wallet's cash never passed our books: the hospital refunded it there
        settlement.refund_part(conn, now, setl_id=order.setl_id, part="cash", refund_id=refund.id, actor=actor)
    conn.execute(update(R).where(R.c.id == refund.id).values(status="succeeded", refund_no=refund_no, updated_at=now, completed_at=now))
    insurance_done, cash_done = given_back(conn, order)
    payments.move(conn, order, po.REFUNDED_ALL if insurance_done and cash_done else po.REFUNDED_PART, now, actor)
    if refund.lines_to_keep is not None:
        _rebill(conn, now, order, refund, actor)
    return get(conn, refund.id)


def _check_lines(conn: Connection, order: Order, scope: str, keep: list[str]) -> None:
    if scope != "all":
        raise InputError("lines_to_keep", "lines_need_scope_all", "按明细退款时 scope 应为 all（整单撤销后重新结算保留的明细）",
                         "a refund of some items takes scope all: the whole settlement is cancelled and the kept lines settled again")
    active = {ln["feedetl_sn"] for ln in visits.list_lines(conn, order.institution_id, order.visit_id) if ln["status"] == "active"}
    unknown = sorted(set(keep) - active)
    if unknown:
        raise InputError("lines_to_keep", "unknown_line", f"明细不存在：{unknown[0]}", f"no such fee line: {unknown[0]}")
    if not keep or len(set(keep)) != len(keep) or set(keep) == active:
        raise InputError("lines_to_keep", "lines_to_keep_invalid", "保留的明细应不为空、不重复，且不是全部明细",
                         "the lines to keep must be some of the lines, each once, not all of them")


def _rebill(conn: Connection, now: datetime, order: Order, refund: Refund, actor: str) -> None:
    """Refund of some items: the whole settlement is cancelled (above); the lines not kept are revoked and a new
    order (same method, patient and payer; ``created``) is made for the visit's remaining lines. The flow drives it."""
    inst = institutions.get(conn, order.institution_id)
    assert inst is not None and refund.lines_to_keep is not None
    for ln in visits.list_lines(conn, order.institution_id, order.visit_id):
        if ln["status"] == "active" and ln["feedetl_sn"] not in refund.lines_to_keep:
            visits.revoke_line(conn, institution=inst, visit_id=order.visit_id, feedetl_sn=ln["feedetl_sn"])
    visit = visits.get(conn, order.institution_id, order.visit_id)
    # The owner was present for this visit when it was paid; the kept items are settled again for less, once.
    assert order.setl_id is not None
    presence.carry(conn, now, setl_id=order.setl_id, institution=inst, visit_id=visit.id, credential_id=f"refund:{refund.id}")
    rest = payments.insert_order(conn, now, institution=inst, request_key=f"rebill:{refund.id}", request_hash=refund.id, method=order.method,
                                  visit=visit, person_id=order.person_id, payer_id=order.payer_id, paycode_id=None,
                                  terminal_id=order.terminal_id, actor=actor)
    conn.execute(update(R).where(R.c.id == refund.id).values(rebill_order_id=rest.id))


def for_request(conn: Connection, institution_id: str, order_id: str, refund_id: str) -> Refund:
    refund = get(conn, refund_id)
    if refund.institution_id != institution_id or refund.order_id != order_id:
        raise NotFound("refund_id", "not_found", "退款记录不存在", "refund not found")
    return refund


def stranded(conn: Connection, now: datetime, *, grace: timedelta, limit: int = 200) -> list[Refund]:
    """Refunds whose cash answer is not known and untouched for ``grace``: ask the institution."""
    rows = conn.execute(select(R).where(R.c.status.in_(("requested", "unknown")), R.c.updated_at <= now - grace)
                        .order_by(R.c.updated_at).limit(limit)).all()
    return [_refund(r) for r in rows]


def view(conn: Connection, refund: Refund) -> dict[str, Any]:
    order = payments.require(conn, refund.order_id)
    return {"refund_id": refund.id, "payment_id": refund.order_id, "scope": refund.scope, "status": refund.status,
            "in_progress": not refund.final, "insurance": format_yuan(refund.insurance_fen), "cash": format_yuan(refund.cash_fen),
            "out_refund_no": refund.id, "refund_no": refund.refund_no, "error_code": refund.error_code,
            "lines_to_keep": list(refund.lines_to_keep) if refund.lines_to_keep is not None else None,
            "items": list(refund.items) if refund.items is not None else None,
            "legs": leg_view(refund.legs) if refund.legs is not None else None,
            "payment_legs": {k: leg_view(v) for k, v in summary(conn, order).items()},
            "rebill": payments.receipt(conn, payments.require(conn, refund.rebill_order_id)) if refund.rebill_order_id else None,
            "created_at": iso_utc(refund.created_at), "updated_at": iso_utc(refund.updated_at), "payment": payments.receipt(conn, order)}


# ---- asking the institution ------------------------------------------------------------------------

REFUND_REASON = "医保支付退款"


async def refund(ctx: Context, *, institution: Institution, order_id: str, request_key: str, request_hash: str, scope: str,
                 actor: str, lines_to_keep: list[str] | None = None, reason: str | None = None, items: list[str] | None = None) -> Any:
    """Refund a completed payment (all, cash only, insurance only, some items). A retry of the same request drives its
    refund on."""
    now = ctx.now()
    started = await ctx.run(lambda c: start(c, now, institution=institution, order_id=order_id, request_key=request_key,
                                                    request_hash=request_hash, scope=scope, actor=actor, lines_to_keep=lines_to_keep,
                                                    reason=reason, items=items))
    done = await drive(ctx, started, actor=actor)
    if done.rebill_order_id is not None:  # some items refunded: the kept lines are settled again in a new order
        rest = await ctx.run(lambda c: payments.require(c, done.rebill_order_id), write=False)
        if not rest.terminal:
            original = await ctx.run(lambda c: payments.require(c, done.order_id), write=False)
            try:
                await cash_leg.drive(ctx, rest, institution=institution, use_account=original.account_pay > 0, actor=actor)
            except YibaoError as exc:  # the refund stands; the new order is voided and shows why (the hospital charges otherwise)
                log.warning("refund %s: the kept lines could not be settled again (%s)", done.id, exc.code)
    if done.final:
        await his_callbacks.deliver(ctx, done.order_id)
    return done


async def drive(ctx: Context, r: Any, *, actor: str) -> Any:
    """Ask the institution for the cash back (``requested``) or what became of it (``unknown``), and record the answer.
    The institution's refund is idempotent by our out_refund_no: asking again never refunds twice."""
    if r.final:
        return r
    order = await ctx.run(lambda c: payments.require(c, r.order_id), write=False)
    assert order.payment_institution_id is not None
    if order.cash_source == "wallet":
        return await _drive_wallet(ctx, r, order, actor=actor)
    refund_no = error_code = None
    try:
        channel = await ctx.channel( order.payment_institution_id)
        # UnionPay names a refund and its trade by number and send time, and the trade by its queryId (our trade_no).
        ask = RefundRequest(order.id, r.id, r.cash_fen, order.cash_pay, REFUND_REASON, sent_at=r.created_at, trade_no=order.trade_no,
                            trade_sent_at=order.created_at)
        if r.status == "unknown":
            try:
                result = await channel.query_refund(order.id, r.id, **sent_at_kw(channel, r.created_at))
            except NotFoundAtChannel:  # signed: it never got the refund, so nothing was given back: ask for it (same out_refund_no)
                result = await channel.refund(ask)
            except Declined as exc:  # the question refused (a rate limit, no permission): it says nothing of the refund
                raise unknown(channel.name, "query_refused", f"the refund query was refused ({exc.code})") from None
        else:
            result = await channel.refund(ask)
        refund_no, error_code = result.refund_id, result.error_code
        outcome = {"succeeded": "succeeded", "failed": "failed"}.get(result.status, "unknown")
        if outcome == "succeeded" and result.amount_fen != r.cash_fen:
            log.error("refund %s: the institution reports %s fen, we asked %s", r.id, result.amount_fen, r.cash_fen)
            outcome = "unknown"
    except Declined as exc:
        outcome, error_code = "failed", exc.code
    except (OutcomeUnknown, NotFoundAtChannel, BadSignature, ChannelError, YibaoError):
        outcome = "unknown"
    now = ctx.now()
    return await ctx.run(lambda c: record(c, now, refund_id=r.id, outcome=outcome, refund_no=refund_no, error_code=error_code,
                                                  actor=actor))


async def _drive_wallet(ctx: Context, r: Any, order: Order, *, actor: str) -> Any:
    """A med-ins order's cash was collected by the wallet for the hospital (merchant of record): the hospital refunds it
    there itself (the wallet's normal refund), and the cash part is recorded given back only when the wallet's mixed
    order shows it (SELF_PAY_REFUND) — until then the refund stays unknown and recovery asks again. The insurance part
    of ``all`` is given back in the same unit, so it never goes back alone. Not seen refunded within
    `WALLET_REFUND_WAIT` of the request: the refund failed (nothing given back) and the order is as before, so the
    hospital's next 6203 (once it has refunded at the wallet) is not refused ``refund_in_progress`` for ever."""
    error_code = None
    try:
        outcome = "succeeded" if await medins.cash_refunded(ctx, order) else "unknown"
    except (OutcomeUnknown, NotFoundAtChannel, BadSignature, ChannelError, YibaoError) as exc:
        log.warning("refund %s: the wallet's mixed order could not be read (%s)", r.id, exc.code)
        outcome = "unknown"
    now = ctx.now()
    if outcome == "unknown" and now >= r.created_at + WALLET_REFUND_WAIT:
        log.warning("refund %s: the wallet shows no refund of the self-pay part after %s: failed", r.id, WALLET_REFUND_WAIT)
        outcome, error_code = "failed", "wallet_refund_not_seen"
    return await ctx.run(lambda c: record(c, now, refund_id=r.id, outcome=outcome, error_code=error_code, actor=actor))


# ---- refunds reconciliation finds (services/reconciliation/resolutions.py) -----------------------------------------

def adopt_institution_refund(conn: Connection, now: datetime, *, order_id: str, out_refund_no: str, refund_no: str | None,
                             amount_fen: int, actor: str) -> Refund:
    """A cash refund the institution made without the platform asking (in its merchant portal, say) and that its own
    query confirmed: recorded as the order's cash refund (`record`: the cash leg reversed, the order moved on, the
    hospital told), so the books say what happened. Only the whole cash of an order paid through the institution,
    not given back yet: anything else is for an operator to accept or correct. The same institution refund twice is one."""
    request_key = f"institution:{out_refund_no}"
    order = payments.require(conn, order_id, lock=True)
    existing = conn.execute(select(R).where(R.c.institution_id == order.institution_id, R.c.request_key == request_key)).first()
    if existing is not None:
        return _refund(existing)
    if order.cash_source is not None:
        raise Conflict("order_id", "not_an_institution_cash", "该支付的现金不经支付机构退款", "this payment's cash is not refunded at an institution")
    if order.status not in (po.COMPLETED, po.PARTIALLY_REFUNDED):
        raise Conflict("order_id", "not_refundable", f"支付单状态为 {order.status}，不能记录退款", f"a {order.status} payment cannot take a refund")
    if given_back(conn, order)[1]:
        raise Conflict("order_id", "cash_already_refunded", "该支付的现金部分已退款", "this payment's cash was already refunded")
    if amount_fen != order.cash_pay:
        raise Conflict("amount", "partial_cash_refund", f"支付机构退款 {format_yuan(amount_fen)} 元，与现金部分 {format_yuan(order.cash_pay)} 元不符",
                       f"the institution refunded {format_yuan(amount_fen)}, not the cash share {format_yuan(order.cash_pay)}: "
                       "accept it with a note instead")
    refund_id = f"RF{now:%Y%m%d}{secrets.token_hex(7).upper()}"
    conn.execute(R.insert().values(id=refund_id, region=order.region, order_id=order.id, institution_id=order.institution_id,
                                   request_key=request_key, request_hash=(refund_no or out_refund_no)[:64], scope="cash",
                                   status="requested", insurance_fen=0, cash_fen=order.cash_pay, updated_at=now, created_at=now))
    payments.move(conn, order, po.REFUND_REQUESTED, now, actor)
    audit.append(conn, region=order.region, actor=actor, action="refund.adopted", subject=refund_id,
                 detail={"payment": order.id, "out_refund_no": out_refund_no, "refund_no": refund_no, "cash": amount_fen}, now=now)
    return record(conn, now, refund_id=refund_id, outcome="succeeded", refund_no=refund_no, actor=actor)


async def give_back_unowned(ctx: Context, *, pi_id: str, out_trade_no: str, trade_no: str | None, paid_at: datetime | None,
                            amount_fen: int, out_refund_no: str, sent_at: datetime, region: str, actor: str) -> RefundResult:
    """Money an institution collected under a number the platform holds no payment for (no order, or one voided): asked
    back to the payer in full. Nothing is in the platform's books for it, so nothing moves there; the request and the
    answer are audited. Idempotent by ``out_refund_no`` (the institution's refund is): asking again asks about the same
    refund (``sent_at``: the same each time, for an institution that names a refund by number and time). `Declined` and
    `OutcomeUnknown` are raised as they come."""
    channel = await ctx.channel(pi_id)
    ask = RefundRequest(out_trade_no, out_refund_no, amount_fen, amount_fen, REFUND_REASON, sent_at=sent_at, trade_no=trade_no,
                        trade_sent_at=paid_at)
    try:
        result = await channel.refund(ask)
    finally:
        now = ctx.now()

        def note(conn: Connection) -> None:
            audit.append(conn, region=region, actor=actor, action="refund.unowned", subject=out_refund_no,
                         detail={"payment_institution": pi_id, "out_trade_no": out_trade_no, "amount": amount_fen}, now=now)
        await ctx.run(note)
    return result
