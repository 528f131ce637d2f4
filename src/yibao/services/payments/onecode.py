"""一码支付 (one-code payment, seed 004): one scan of the holder's dynamic code settles the fund, the
personal account and the cash share together — all or nothing.

`start` uses the code and records the order; `pay` runs it and the hold in one unit, then the cash leg
(`cash_leg.after_hold`). A retry of the same request (same Idempotency-Key) finds its order and drives it on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, YibaoError
from yibao.services import Context
from yibao.services.agency import pilots
from yibao.services.agency.institutions import Institution
from yibao.services.care import presence
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments import paycodes
from yibao.services.payments.orders import Order
from yibao.store.tables import payment_orders as O


def start(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, request_key: str, request_hash: str,
                  code: str | None, terminal_id: str | None, visit_id: str | None, lines: list[dict] | None, actor: str,
                  paycode_id: int | None = None, inserted: list[Order] | None = None) -> Order | YibaoError:
    """一码支付, first unit: verify and use the code, register the visit (with ``lines``), record the order ``created``.

    Instead of ``code``, ``paycode_id`` names a code this institution scanned within the last minutes
    (`paycodes.scanned`, typically to open the visit): it pays once, for its own person only.

    A retry of the same request (same Idempotency-Key) finds its order and returns it as it stands.
    A refused code is *returned* (its refusal row must commit) and raised by the caller.

    `pay` runs this and the hold in one unit. As docs/paycodes.md says, a used code stays used if the payment then
    fails: the holder refreshes it.
    """
    existing = payments.for_request(conn, institution.id, request_key)
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                           "this Idempotency-Key was already used for a different request")
        return existing
    if (visit_id is None) == (lines is None):  # before the code is used: a malformed request must not burn it
        raise InputError("visit_id", "visit_or_lines", "请给出 visit_id（已上传明细）或 lines（明细）之一",
                         "give either visit_id (fee lines already uploaded) or lines")
    if (code is None) == (paycode_id is None):
        raise InputError("code", "code_or_scan", "请给出 code（现在出示的医保码）或 paycode_id（刚才扫描的码）之一",
                         "give either code (the code shown now) or paycode_id (a code scanned a moment ago)")
    # Before the code is used: an institution without a pilot agreement in force is refused and the code stays unused.
    pilots.require(conn, now, institution_id=institution.id, mode="onecode")
    if paycode_id is not None:
        consumed = paycodes.scanned(conn, now, paycode_id=paycode_id, institution=institution)
        if conn.execute(select(O.c.id).where(O.c.paycode_id == paycode_id)).first() is not None:
            raise Conflict("paycode_id", "paycode_used", "该次扫码已用于一笔支付，请参保人重新出示医保码",
                           "this scan already paid once; scan the code the holder shows now")
        # The scan's presence, taken before anything is audited (a settlement takes it, then the audit head); used by
        # a settlement at the counter, or presented for another visit, it pays nothing here.
        present = presence.take(conn, now, kind="paycode", credential_id=str(paycode_id), institution_id=institution.id, field="paycode_id",
                                visit_id=visit_id)
        visit = payments.visit_for(conn, now, institution, consumed.person_id, visit_id, lines)
        presence.bind(conn, now, present, visit_id=visit.id, field="paycode_id")
        return _inserted(inserted, payments.insert_order(
            conn, now, institution=institution, request_key=request_key, request_hash=request_hash, method="onecode", visit=visit,
            person_id=consumed.person_id, payer_id=consumed.holder_id, paycode_id=consumed.paycode_id,
            terminal_id=terminal_id or consumed.terminal_id, actor=actor))
    assert code is not None
    consumed = paycodes.consume(conn, keyring, now, code=code, institution=institution, terminal_id=terminal_id, actor=actor)
    if isinstance(consumed, YibaoError):
        twin = payments.for_request(conn, institution.id, request_key) if consumed.code == "paycode_used" else None
        if twin is not None and twin.request_hash == request_hash:
            return twin  # a concurrent copy of this request used the code first (we waited on its row): its order is ours
        return consumed
    visit = payments.visit_for(conn, now, institution, consumed.person_id, visit_id, lines, person=consumed.person)
    scanned_now = consumed.presence or (presence.get(conn, consumed.presence_id) if consumed.presence_id else None)
    assert scanned_now is not None
    presence.bind(conn, now, scanned_now, visit_id=visit.id, field="code")  # the code shown now: the holder is present for this visit
    return _inserted(inserted, payments.insert_order(
        conn, now, institution=institution, request_key=request_key, request_hash=request_hash, method="onecode", visit=visit,
        person_id=consumed.person_id, payer_id=consumed.holder_id, paycode_id=consumed.paycode_id, terminal_id=terminal_id, actor=actor))


def _inserted(out: list[Order] | None, order: Order) -> Order:
    """Say (in ``out``) that this unit inserted ``order``: the hold in the same unit may take it as it is, unread."""
    if out is not None:
        out.append(order)
    return order


class _HoldFailed(Exception):
    """The hold (in the code's unit) refused: that unit rolls back whole, then `pay` uses the code and voids the order."""

    def __init__(self, error: YibaoError) -> None:
        super().__init__(error.code)
        self.error = error


async def pay(ctx: Context, *, institution: Institution, request_key: str, request_hash: str, code: str | None, terminal_id: str | None,
                  visit_id: str | None, lines: list[dict] | None, use_account: bool, actor: str, pay_by: str = "channel",
                  paycode_id: int | None = None, finish: cash_leg.Finish | None = None,
                  answered: Callable[[Connection], bool] | None = None) -> Order | None:
    """一码支付: hold, then (cash within the password-free limit) collect it and complete or void.

    The code, the visit, the order, the hold and (the payer's agreement signed) the cash request are ONE unit: a crash
    before its commit leaves nothing, after it recovery asks the institution (cash.py). That unit locks the person's
    rows, then accounts, and takes an audit lane last (docs/architecture.md, the lock order): no fund row is locked and
    no lane waited on, so the code's audit entry no longer needs a unit of its own to stay clear of a deadlock.

    Returns the order as it then stands: completed, voided, awaiting_confirmation (the holder is
    asked in the app), or cash_unknown (recovery and notifications will finish it). Raises a refused code.
    ``finish`` runs in the unit that leaves the order so (services/payments/cash.py). ``answered``, run first in the
    first unit, says whether the caller has an answer for this request already: then nothing is done and None returned.
    """
    now = ctx.now()

    def begin(c: Connection) -> Order | cash_leg.Held | YibaoError | None:
        if answered is not None and answered(c):
            return None
        inserted: list[Order] = []
        started = start(c, ctx.keyring, now, institution=institution, request_key=request_key, request_hash=request_hash, code=code,
                        terminal_id=terminal_id, visit_id=visit_id, lines=lines, actor=actor, paycode_id=paycode_id, inserted=inserted)
        if isinstance(started, YibaoError) or started.status != po.CREATED:
            return started  # a refused code (its refusal row commits), or a retry's order as it stands
        try:
            return cash_leg.hold_and_request(c, ctx.keyring, now, order_id=started.id, institution=institution, use_account=use_account,
                                             actor=actor, pay_by=pay_by, finish=finish,
                                             created=started if inserted and inserted[0] is started else None)
        except YibaoError as exc:
            raise _HoldFailed(exc) from None

    try:
        begun = await ctx.run(begin)
    except _HoldFailed as failed:
        # As when the hold was a unit of its own: the code stays used and the order is voided (docs/paycodes.md: the
        # holder refreshes the code), in a unit that does again what the rolled-back one did up to the hold.
        event = po.NO_CHANNEL if failed.error.code == "no_default_binding" else po.ABANDONED

        def void(c: Connection) -> None:
            started = start(c, ctx.keyring, now, institution=institution, request_key=request_key, request_hash=request_hash, code=code,
                            terminal_id=terminal_id, visit_id=visit_id, lines=lines, actor=actor, paycode_id=paycode_id)
            if isinstance(started, Order):
                payments.void(c, now, order_id=started.id, event=event, actor=actor, only_from=(po.CREATED,))
        await ctx.run(void)
        raise failed.error from None
    if begun is None:
        return None
    if isinstance(begun, YibaoError):
        raise begun  # its refusal row is committed
    if isinstance(begun, cash_leg.Held):
        return await cash_leg.after_hold(ctx, begun, actor=actor, finish=finish)
    return await cash_leg.drive(ctx, begun, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by, finish=finish)
