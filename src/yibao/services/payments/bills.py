"""Mobile payment (移动支付): the hospital publishes a bill, the holder pays it in the app.

A bill is a payment order in the state ``billed`` (method ``mobile``) for a visit whose fee lines the
hospital uploaded. Nothing is priced or held when it is published: the holder sees the split
previewed (a pre-settlement, stored nowhere) and, on paying, the order is held exactly like a
one-code payment (`payments.hold` from ``billed``) and its cash collected from the institution the
holder chose. The holder is present, so no password-free limit applies; the PIN is required when
the cash share is above 0 (a wrong PIN is counted on the bill, the 5th voids it).

Who may see and pay a bill: the patient, or a guardian linked to the patient (`families.can_view`).
Anyone else gets "not found" — the same as for a bill that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError
from yibao.domain.money import format_yuan
from yibao.services import Context
from yibao.services.agency import institutions, pilots
from yibao.services.agency.institutions import Institution
from yibao.services.care import presence, settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments import pins as payment_pins
from yibao.services.payments.orders import Order
from yibao.services.people import families
from yibao.store.tables import family_links as F
from yibao.store.tables import payment_orders as O


def publish(conn: Connection, now: datetime, *, institution: Institution, visit_id: str, request_key: str, request_hash: str,
            actor: str, method: str = "mobile") -> Order:
    """The hospital publishes the bill of a visit whose lines are uploaded: an order ``billed`` (method ``mobile``; ``medins``:
    paid through a wallet with the holder's pay_auth_no, services/payments/medins.py — never shown in the app)."""
    existing = payments.for_request(conn, institution.id, request_key)
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                           "this Idempotency-Key was already used for a different request")
        return existing
    pilots.require(conn, now, institution_id=institution.id, mode="mobile")
    visit = visits.get(conn, institution.id, visit_id, lock=True)
    settlement.presettle(conn, institution=institution, visit_id=visit_id, account=AccountRequest(use=False))  # settleable and priced
    if not visits.list_lines(conn, institution.id, visit_id):
        raise Conflict("visit_id", "no_fee_lines", "该就诊没有费用明细", "the visit has no fee lines")
    open_bill = conn.execute(select(O.c.id).where(O.c.visit_id == visit.id, O.c.status.in_(po.OPEN))).first()
    if open_bill is not None:
        raise Conflict("visit_id", "bill_open", "该就诊已有未完成的账单或支付", "the visit already has an open bill or payment")
    return payments.insert_order(conn, now, institution=institution, request_key=request_key, request_hash=request_hash, method=method,
                                  visit=visit, person_id=visit.person_id, payer_id=visit.person_id, paycode_id=None, terminal_id=None,
                                  actor=actor, status=po.BILLED)


def _visible(conn: Connection, holder_id: str) -> Any:
    children = select(F.c.member_id).where(F.c.holder_id == holder_id, F.c.status == "active", F.c.relation.in_(("guardian", "child_card")))
    return or_(O.c.person_id == holder_id, O.c.person_id.in_(children))


def visible(holder_id: str) -> Any:
    """The condition on payment_orders for the bills a holder sees: theirs and their linked children's."""
    return _visible(None, holder_id)  # type: ignore[arg-type]


def holder_bill(conn: Connection, order_id: str, holder_id: str, *, lock: bool = False) -> Order:
    """A mobile bill the holder may see: their own, or a linked child's (else "not found")."""
    order = payments.get(conn, order_id, lock=lock)
    if order is None or order.method != "mobile" or not (order.payer_id == holder_id or families.can_view(conn, holder_id, order.person_id)):
        raise NotFound("payment_id", "not_found", "账单不存在", "bill not found")
    return order


def account_request(order: Order, payer_id: str, use_account: bool) -> AccountRequest:
    if not use_account:
        return AccountRequest(use=False)
    if payer_id != order.person_id:
        return AccountRequest(use=True, payer="guardian", payer_person_id=payer_id)
    return AccountRequest(use=True)


def preview(conn: Connection, order: Order, payer_id: str, use_account: bool) -> dict[str, Any]:
    """The split as it would be now (pre-settlement, stored nowhere), in yuan: the fund by layer too."""
    inst = institutions.get(conn, order.institution_id)
    assert inst is not None
    doc = settlement.presettle(conn, institution=inst, visit_id=order.visit_id, account=account_request(order, payer_id, use_account),
                               holder_present=True)  # the holder's (or guardian's) own view, in the app
    return {k: doc[k] for k in ("medfee_sumamt", "hifp_pay", "hifmi_pay", "hifob_pay", "oth_pay", "maf_pay", "fund_pay_sumamt", "acct_pay",
                                "acct_mulaid_pay", "psn_cash_pay", "account_refusal") if k in doc}


def preview_cash(conn: Connection, order: Order, payer_id: str, use_account: bool) -> int:
    from yibao.domain.money import parse_yuan

    return parse_yuan(preview(conn, order, payer_id, use_account)["psn_cash_pay"])


def bill_view(conn: Connection, order: Order, viewer_id: str, use_account: bool) -> dict[str, Any]:
    """A bill with its lines and, while it waits, the split previewed — or, when the visit cannot be priced now
    (settled by a payment that raced the bill, say), ``problem``: that refusal, so one bad bill never hides the others."""
    view = payments.receipt(conn, order)
    view["lines"] = [{"feedetl_sn": ln["feedetl_sn"], "code": ln["code"], "name": ln["name"], "class": ln["line_class"],
                      "unit_price": format_yuan(ln["unit_price"])}
                     for ln in visits.list_lines(conn, order.institution_id, order.visit_id) if ln["status"] == "active"]
    view["preview"], view["problem"] = None, None
    if order.status == po.BILLED:
        try:
            view["preview"] = preview(conn, order, viewer_id, use_account)
        except YibaoError as exc:
            view["problem"] = {"code": exc.code, "field": exc.field, "zh": exc.message_zh, "en": exc.message_en}
    return view


def for_holder(conn: Connection, holder_id: str, *, use_account: bool, include_done: bool = False) -> list[dict[str, Any]]:
    """The holder's bills (and their linked children's): waiting ones, or all."""
    q = select(O).where(O.c.method == "mobile", _visible(conn, holder_id))
    if not include_done:
        q = q.where(O.c.status == po.BILLED)
    rows = conn.execute(q.order_by(O.c.created_at.desc()).limit(100)).all()
    return [bill_view(conn, payments.from_row(r), holder_id, use_account) for r in rows]


def check_pin(conn: Connection, now: datetime, *, order_id: str, holder_id: str, pin_ok: bool | None, actor: str) -> YibaoError | None:
    """Count a wrong PIN on the bill (committed before the refusal is answered); the 5th voids the bill. The holder's
    own count (pins.PER_HOLDER, across bills and payments) may lock their PIN first: said with Retry-After."""
    order = holder_bill(conn, order_id, holder_id, lock=True)
    if order.status != po.BILLED:
        return None  # already paid or on its way: the flow drives it on
    if pin_ok is None:
        return Conflict("pin", "pin_not_set", "请先设置支付密码", "set a payment PIN first")
    if pin_ok:
        return None
    attempts = order.pin_attempts + 1
    left = payments.MAX_PIN_ATTEMPTS - attempts
    conn.execute(update(O).where(O.c.id == order.id).values(pin_attempts=attempts, updated_at=now))
    if left <= 0:
        payments.move(conn, payments.require(conn, order.id), po.PIN_EXHAUSTED, now, actor, void_reason=po.PIN_EXHAUSTED)
        return Conflict("pin", "pin_attempts_exhausted", "支付密码错误次数过多，账单已撤销，请联系医院重新发布",
                        "too many wrong PINs; the bill was voided (the hospital publishes it again)")
    wait = payment_pins.wait_for(conn, now, holder_id)
    if wait is not None:
        return payment_pins.pin_locked("pin", wait)
    left = min(left, payment_pins.PER_HOLDER.left(conn, now, holder_id))
    return InputError("pin", "pin_wrong", f"支付密码错误，还可尝试{left}次", f"wrong PIN; {left} attempts left")


@dataclass(frozen=True)
class Expected:
    """What the holder saw and agreed to pay (fen): the bill is held only if it still comes to exactly this.
    The split can move between the preview and the tap — the hospital's lines, the account's balance (another
    payment, a relative's mutual aid), the year's totals — and a PIN confirms an amount, not whatever it became."""
    account: int
    cash: int


def start_pay(conn: Connection, now: datetime, *, order_id: str, holder_id: str, use_account: bool, pi_id: str | None,
              pin_verified: bool, actor: str, pay_by: str = "channel", expected: Expected | None = None) -> Order:
    """The holder pays: the payer becomes the holder (a guardian for a child), then the bill is held (one unit).
    With ``expected``, a hold that comes to another account or cash amount is refused and rolled back whole."""
    order = holder_bill(conn, order_id, holder_id, lock=True)
    if order.status != po.BILLED:
        return order
    inst = institutions.get(conn, order.institution_id)
    assert inst is not None
    # Published under an agreement in force, paid maybe days later: the agreement must still be in force now.
    pilots.require(conn, now, institution_id=inst.id, mode="mobile")
    if order.payer_id != holder_id:
        conn.execute(update(O).where(O.c.id == order.id).values(payer_id=holder_id))
    # Paying in the app is the holder's own act: their presence for this visit, used by this hold (services/care/presence.py).
    present = presence.record(conn, now, kind="app", credential_id=order.id, institution=inst, person_id=order.person_id,
                              owner_id=holder_id, ttl=presence.APP_TTL, visit_id=order.visit_id) if use_account else None
    held = payments.hold(conn, now, order_id=order.id, institution=inst, use_account=use_account, actor=actor, pi_id=pi_id,
                         holder_present=True, pin_verified=pin_verified, pay_by=pay_by, presence_id=present.id if present else None)
    if expected is not None and (held.account_pay, held.cash_pay) != (expected.account, expected.cash):
        raise Conflict("expected_cash", "bill_amount_changed",
                       f"账单金额已变化：个人账户支付¥{format_yuan(held.account_pay)}，个人现金支付¥{format_yuan(held.cash_pay)}，请核对后重新支付",
                       f"the bill has changed: account ¥{format_yuan(held.account_pay)}, cash ¥{format_yuan(held.cash_pay)}; "
                       "check it and pay again")
    return held


def withdraw(conn: Connection, now: datetime, *, institution: Institution, order_id: str, actor: str) -> Order:
    """The hospital takes back a bill the holder has not paid (to change its lines, or to be paid another way).
    Withdrawing one already withdrawn answers it as it is; a bill being paid or paid cannot be withdrawn."""
    order = payments.for_institution(conn, institution.id, order_id)
    order = payments.require(conn, order.id, lock=True)
    if order.method not in ("mobile", "medins"):
        raise Conflict("payment_id", "not_a_bill", "该支付不是发送到手机的账单", "this payment is not a bill sent to the phone")
    if order.status == po.VOIDED and (order.void_reason == po.WITHDRAWN or (order.method == "medins" and order.void_reason == po.ABANDONED)):
        return order
    if order.method == "medins" and order.status == po.HELD:  # pre-settled for a wallet that has not asked for the cash: the hold
        return payments.void_now(conn, order, po.ABANDONED, now, actor)  # released, as recovery does when the wallet never asks
    if order.status != po.BILLED:
        raise Conflict("payment_id", "bill_not_waiting", "该账单已在支付中、已支付或已撤销，不能撤回",
                       "the bill is being paid, paid or voided: it cannot be withdrawn")
    return payments.move(conn, order, po.WITHDRAWN, now, actor, void_reason=po.WITHDRAWN)


def latest_for_visit(conn: Connection, institution_id: str, visit_id: str) -> str | None:
    """The id of the latest bill a hospital published for one of its visits, if any."""
    visits.get(conn, institution_id, visit_id)  # another hospital's visit is "not found"
    return conn.execute(select(O.c.id).where(O.c.institution_id == institution_id, O.c.visit_id == visit_id, O.c.method == "mobile")
                        .order_by(O.c.created_at.desc(), O.c.id.desc()).limit(1)).scalar()


def for_institution_bill(conn: Connection, institution_id: str, order_id: str) -> Order:
    return payments.for_institution(conn, institution_id, order_id)


# ---- the holder pays in the app ------------------------------------------------------------------


async def pay(ctx: Context, *, order_id: str, holder_id: str, use_account: bool, pi_id: str | None, pin: str | None,
                   actor: str, pay_by: str = "channel", expected: Expected | None = None) -> Order:
    """移动支付: the holder (present, in the app) pays a bill. Cash above 0 needs the PIN (checked here, outside
    any unit; a wrong one counted in a unit of its own). Then the bill is held and its cash collected like any
    order; the hospital learns the end by a signed callback (outbox written with the end, delivered here once
    and retried by recovery). A bill already paid or on its way is driven on, never paid twice.
    ``expected`` (`Expected`): the account and cash amounts the holder was shown; held only if they still hold."""
    from yibao.services.agency import institutions

    order = await ctx.run(lambda c: holder_bill(c, order_id, holder_id), write=False)
    if order.status == po.BILLED:
        cash = await ctx.run(lambda c: preview_cash(c, order, holder_id, use_account), write=False)
        pin_verified = False
        if cash > 0:
            if pin is None:
                raise Conflict("pin", "pin_required", "现金部分需输入支付密码", "the cash share needs the payment PIN")
            pin_ok = await payment_pins.verify(ctx, holder_id, pin)
            now = ctx.now()
            refused = await ctx.run(lambda c: check_pin(c, now, order_id=order_id, holder_id=holder_id, pin_ok=pin_ok, actor=actor))
            if refused is not None:
                await his_callbacks.deliver(ctx, order_id)  # a 5th wrong PIN voided the bill: the hospital hears of it
                raise refused
            pin_verified = bool(pin_ok)
        now = ctx.now()
        order = await ctx.run(lambda c: start_pay(c, now, order_id=order_id, holder_id=holder_id, use_account=use_account,
                                                        pi_id=pi_id, pin_verified=pin_verified, actor=actor, pay_by=pay_by,
                                                        expected=expected))
    if not order.terminal and order.status != po.BILLED:
        inst = await ctx.run(lambda c: institutions.get(c, order.institution_id), write=False)
        order = await cash_leg.drive(ctx, order, institution=inst, use_account=use_account, actor=actor)
    if order.terminal:
        await his_callbacks.deliver(ctx, order.id)
    return order
