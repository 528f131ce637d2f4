"""Resolving a reconciliation difference: one service, by an operator, with a reason, audited. Nothing moves money
without a resolution, and a resolution moves money only through the path that owns it:

- ``query`` — the institution's query decides. An order still in doubt is asked about by payment recovery's own step
  (`cash.ask`: completed or voided there); a refund in doubt by the refunds service (`refunds.drive`); a refund the
  institution made that the platform never asked for is recorded through the refunds service once the institution's
  `query_refund` confirms it (`refunds.adopt_institution_refund`); otherwise the query settles the difference when the
  institution's own answer agrees with the platform's books (the statement dropped, doubled or misstated the trade).
- ``refund`` — money the institution collected under a number the platform holds no payment for (no order, or one
  voided) is asked back through the refunds service (`refunds.give_back_unowned`); nothing was in the books for it.
- ``correcting_transfer`` — only for a trade's amount, and only when the institution's query confirms the amount in
  its statement: the ledger's cash leg is corrected by the difference (one transfer, ``recon:{difference}``).
- ``accept`` — with a note; nothing moves.

A resolution that the institution's answer does not support leaves the difference open and says why (409).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from yibao.channels.base import ChannelError, NotFoundAtChannel, sent_at_kw
from yibao.domain import payment_order as po
from yibao.domain import reconciliation as rc
from yibao.domain.errors import Conflict, InputError, YibaoError
from yibao.domain.ledger import institution_cash, patient_cash_source
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.books import audit, ledger
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments import refunds
from yibao.services.reconciliation import runs
from yibao.store.sql import as_datetime
from yibao.store.tables import reconciliation_differences as D

MAX_TEXT = 500


def _unsupported(what_zh: str, what_en: str) -> Conflict:
    return Conflict("resolution", "resolution_not_supported", f"支付机构的答复不支持该处理：{what_zh}",
                    f"the institution's answer does not support this resolution: {what_en}")


def _check(diff: Any, resolution: str, reason: str, note: str | None) -> None:
    if resolution not in rc.RESOLUTIONS:
        raise InputError("resolution", "invalid_resolution", "处理方式应为 query、refund、correcting_transfer 或 accept",
                         "resolution must be query, refund, correcting_transfer or accept")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_TEXT:
        raise InputError("reason", "reason_required", f"须填写处理原因（1–{MAX_TEXT} 字）", f"a reason is required (1–{MAX_TEXT} characters)")
    if resolution == rc.ACCEPT and (not note or not note.strip()):
        raise InputError("note", "note_required", "接受差异须填写说明", "accepting a difference needs a note")
    if note is not None and len(note) > MAX_TEXT:
        raise InputError("note", "note_too_long", f"说明最多 {MAX_TEXT} 字", f"the note is at most {MAX_TEXT} characters")
    if diff.status != "open":
        raise Conflict("difference_id", "difference_not_open", f"该差异状态为 {diff.status}，不能再处理",
                       f"this difference is {diff.status}: it cannot be resolved again")
    allowed = rc.allowed_resolutions(diff.cls, diff.kind, diff.leg_status)
    if resolution not in allowed:
        raise Conflict("resolution", "resolution_not_allowed", f"该差异只能以 {'、'.join(allowed)} 处理",
                       f"this difference can be resolved by {', '.join(allowed)} only")


async def resolve(ctx: Context, *, difference_id: str, resolution: str, reason: str, note: str | None = None, actor: str) -> dict[str, Any]:
    """Resolve one open difference (see the module's docstring); the resolved difference's view."""
    diff = await ctx.run(lambda c: runs.get_difference(c, difference_id), write=False)
    _check(diff, resolution, reason, note)
    transfer: dict[str, Any] | None = None
    if resolution == rc.QUERY:
        outcome = await _query(ctx, diff, actor)
    elif resolution == rc.REFUND:
        outcome = await _refund(ctx, diff, actor)
    elif resolution == rc.CORRECTING_TRANSFER:
        outcome, transfer = await _correcting(ctx, diff)
    else:
        outcome = {"accepted": True}
    now = ctx.now()
    return await ctx.run(lambda c: _mark(c, now, difference_id=difference_id, resolution=resolution, reason=reason, note=note,
                                         outcome=outcome, transfer=transfer, actor=actor))


def _mark(conn: Connection, now: datetime, *, difference_id: str, resolution: str, reason: str, note: str | None,
          outcome: dict[str, Any], transfer: dict[str, Any] | None, actor: str) -> dict[str, Any]:
    diff = runs.get_difference(conn, difference_id, lock=True)
    if diff.status != "open":
        raise Conflict("difference_id", "difference_not_open", f"该差异状态为 {diff.status}，不能再处理",
                       f"this difference is {diff.status}: it cannot be resolved again")
    if transfer is not None:  # the correction posts with the resolution, in its unit: never one without the other
        t = ledger.transfer(conn, now=now, **transfer)
        outcome = {**outcome, "transfer": {"client_id": t.client_id, "debit": t.debit_account_id, "credit": t.credit_account_id,
                                           "amount": format_yuan(t.amount)}}
    conn.execute(update(D).where(D.c.id == difference_id).values(status="resolved", resolution=resolution, reason=reason.strip(),
                                                                 note=note.strip() if note else None,
                                                                 outcome=json.dumps(outcome, ensure_ascii=False), resolved_by=actor,
                                                                 resolved_at=now))
    audit.append(conn, region=diff.region, actor=actor, action="reconciliation.resolve", subject=difference_id,
                 detail={"class": diff.cls, "kind": diff.kind, "key": diff.key, "resolution": resolution, "reason": reason.strip(),
                         "note": note, "outcome": outcome}, now=now)
    runs.refresh_run(conn, diff.run_id)
    return runs.difference_view(runs.get_difference(conn, difference_id))


# ---- query -------------------------------------------------------------------------------------------

async def _query(ctx: Context, diff: Any, actor: str) -> dict[str, Any]:
    channel = await ctx.channel(diff.payment_institution_id)
    if diff.kind == "trade":
        if diff.order_id is None:
            raise _unsupported("平台无此支付单，请退款或接受", "the platform has no order for it: refund it or accept it")
        order = await ctx.run(lambda c: payments.require(c, diff.order_id), write=False)
        if order.status in po.CASH_IN_DOUBT:  # payment recovery's own step: the institution's truth completes or voids it
            order = await cash_leg.ask(ctx, order, actor=actor)
            if order.status not in po.PAID:
                raise _unsupported(f"查询后支付单为 {order.status}", f"after the query the order is {order.status}")
            return {"order": order.id, "status": order.status, "completed_by": "payment recovery (query)"}
        if order.status not in po.PAID:
            raise _unsupported(f"支付单为 {order.status}", f"the order is {order.status}")
        try:
            truth = await channel.query(order.id, **sent_at_kw(channel, order.created_at))
        except NotFoundAtChannel:
            raise _unsupported("支付机构查无此单", "the institution does not know the order") from None
        except ChannelError as exc:
            raise _unsupported(f"查询无结果（{exc.code}）", f"the query gave no answer ({exc.code})") from None
        platform_fen = diff.platform_fen if diff.platform_fen is not None else order.cash_pay
        if truth.status != "succeeded" or truth.amount_fen != platform_fen:
            raise _unsupported(f"支付机构答复 {truth.status}、{format_yuan(truth.amount_fen)} 元",
                               f"the institution answers {truth.status}, {format_yuan(truth.amount_fen)}")
        return {"query": {"status": truth.status, "amount": format_yuan(truth.amount_fen), "trade_no": truth.trade_no},
                "books": "agree with the institution's query"}
    # a refund
    if diff.refund_id is not None:
        r = await ctx.run(lambda c: refunds.get(c, diff.refund_id), write=False)
        if not r.final:  # the refunds service asks the institution about its own refund
            r = await refunds.drive(ctx, r, actor=actor)
            if r.status != "succeeded":
                raise _unsupported(f"查询后退款为 {r.status}", f"after the query the refund is {r.status}")
            return {"refund": r.id, "status": r.status}
        if r.status != "succeeded":
            raise _unsupported(f"平台退款为 {r.status}", f"the platform's refund is {r.status}")
        # A refund recorded from the institution's own (adopt_institution_refund) is known there by its number, not ours.
        theirs = r.request_key.removeprefix("institution:") if r.request_key.startswith("institution:") else r.id
        try:
            truth = await channel.query_refund(diff.out_trade_no, theirs, **sent_at_kw(channel, r.created_at))
        except (NotFoundAtChannel, ChannelError) as exc:
            raise _unsupported(f"退款查询无结果（{exc.code}）", f"the refund query gave no answer ({exc.code})") from None
        if truth.status != "succeeded" or truth.amount_fen != diff.platform_fen:
            raise _unsupported(f"支付机构答复 {truth.status}、{format_yuan(truth.amount_fen)} 元",
                               f"the institution answers {truth.status}, {format_yuan(truth.amount_fen)}")
        return {"query_refund": {"status": truth.status, "amount": format_yuan(truth.amount_fen)}, "books": "agree"}
    if diff.order_id is None:
        raise _unsupported("平台无此支付单，请接受并线下处理", "the platform has no order for it: accept it with a note")
    # A refund the institution made that the platform never asked for: its query confirms, the refunds service records it.
    try:
        truth = await channel.query_refund(diff.out_trade_no, diff.key)
    except (NotFoundAtChannel, ChannelError, YibaoError) as exc:
        raise _unsupported(f"退款查询无结果（{exc.code}）", f"the refund query gave no answer ({exc.code})") from None
    if truth.status != "succeeded":
        raise _unsupported(f"支付机构退款为 {truth.status}", f"the institution's refund is {truth.status}")
    now = ctx.now()
    adopted = await ctx.run(lambda c: refunds.adopt_institution_refund(c, now, order_id=diff.order_id, out_refund_no=diff.key,
                                                                      refund_no=truth.refund_id, amount_fen=truth.amount_fen,
                                                                      actor=actor))
    return {"query_refund": {"status": truth.status, "amount": format_yuan(truth.amount_fen), "refund_id": truth.refund_id},
            "recorded_refund": adopted.id}


# ---- refund ------------------------------------------------------------------------------------------

async def _refund(ctx: Context, diff: Any, actor: str) -> dict[str, Any]:
    if diff.order_id is not None:
        order = await ctx.run(lambda c: payments.require(c, diff.order_id), write=False)
        if order.status != po.VOIDED:
            raise _unsupported(f"支付单为 {order.status}，其退款由医院发起", f"the order is {order.status}: the hospital refunds it")
    amount = int(diff.institution_fen)
    out_refund_no = runs.RETURNED_PREFIX + diff.id[len(runs.RETURNED_PREFIX_DIFF):]  # one per difference: asking again asks the same
    result = await refunds.give_back_unowned(ctx, pi_id=diff.payment_institution_id, out_trade_no=diff.out_trade_no,
                                             trade_no=diff.institution_ref, paid_at=as_datetime(diff.institution_at), amount_fen=amount,
                                             out_refund_no=out_refund_no, sent_at=as_datetime(diff.created_at), region=diff.region,
                                             actor=actor)
    if result.status != "succeeded":
        raise _unsupported(f"退款为 {result.status}，稍后再处理", f"the refund is {result.status}: resolve again later to ask")
    return {"refund": {"out_refund_no": out_refund_no, "refund_id": result.refund_id, "amount": format_yuan(result.amount_fen)}}


# ---- correcting transfer ------------------------------------------------------------------------------

async def _correcting(ctx: Context, diff: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    order = await ctx.run(lambda c: payments.require(c, diff.order_id), write=False)
    channel = await ctx.channel(diff.payment_institution_id)
    try:
        truth = await channel.query(order.id, **sent_at_kw(channel, order.created_at))
    except ChannelError as exc:
        raise _unsupported(f"查询无结果（{exc.code}）", f"the query gave no answer ({exc.code})") from None
    if truth.status != "succeeded" or truth.amount_fen != diff.institution_fen:
        raise _unsupported(f"支付机构查询答复 {truth.status}、{format_yuan(truth.amount_fen)} 元，与对账单不符",
                           f"the institution's query answers {truth.status}, {format_yuan(truth.amount_fen)}: not its statement's amount")
    delta = int(diff.institution_fen) - int(diff.platform_fen)
    source, hospital = patient_cash_source(order.region), institution_cash(order.institution_id)
    transfer = dict(client_id=f"recon:{diff.id}", debit=source if delta > 0 else hospital, credit=hospital if delta > 0 else source,
                    amount=abs(delta), code="reconciliation", region=order.region, ref=order.id)
    return {"query": {"status": truth.status, "amount": format_yuan(truth.amount_fen)}, "corrected_by": format_yuan(delta),
            "at": iso_utc(ctx.now())}, transfer
