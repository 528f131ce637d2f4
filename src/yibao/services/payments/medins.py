"""Medical-insurance orders paid through a wallet (医保移动支付 as WeChat Pay and Alipay model it: docs/channels.md
"Medical-insurance orders" and "… through Alipay", docs/payments.md "Paid through a wallet"). yibao is the insurance
platform behind the wallet. The wallet's words (WeChat's `POST /v3/med-ins/orders`, Alipay's
`alipay.commerce.medical.trade.createandpay`) reach the same units: its connector (`MedInsWallet`) verifies each request
and turns it into the platform's terms — WeChat's names, fen — and the answer back (`wallet_request`).

1. **The holder authorises** (`authorise`): in yibao's app — logged in, with the payment PIN — for one wallet. That
   act is the e-voucher authorisation: an ``authCode`` (single use, `CODE_TTL`), handed to the wallet.
2. **The wallet exchanges it** (`exchange`, a request signed by the wallet): a ``pay_auth_no`` (single use,
   `PAY_AUTH_TTL`), bound to the holder and the wallet; it reaches the hospital, which carries it in 6201/6202.
3. **6201 with payAuthNo** (`bind`): the hospital's order (a payment order, method ``medins``, ``billed``) — the
   pay_auth_no is bound to it and to no other. **6202 with payAuthNo** (`hold`): the holder's authorisation becomes
   their presence (kind ``wallet``), used up by the pre-settlement that prices the visit and HOLDS every fund and
   account leg (the platform decides them); the order is ``held`` and waits for the wallet's mixed order.
4. **The wallet's mixed order** (`check`, `request_cash`, `record_result`, each a request signed by the wallet): at
   the hospital's order it asks whether the amounts are the held ones (the fee parts, field by field); when the
   holder pays, it asks to collect (``cash_requested``: recorded before the self-pay part is collected), then says
   what became of the self-pay part — collected: the insurance settlement is posted (``completed``); failed: the
   hold is voided (``voided``). Both parts complete, or both are undone.
5. **Recovery** (`ask`): an order left ``cash_requested`` (the wallet's word lost, a crash) is settled by the
   wallet's own query of its mixed order (`outcome_of`) — within minutes: once `REQUEST_WINDOW` has passed since the
   request no new one is accepted, so a self-pay part still not collected never will be and the order is voided;
   an order left ``held`` past `orders.MEDINS_WAIT` (the wallet never ordered,
   or the holder never paid) is voided (services/payments/orders.py `stranded`); the hospital may revoke it before
   (6401, `bills.withdraw`).

Nothing the wallet or the hospital sends is taken on its word: the pay_auth_no is matched by its hash to the
order it was bound to, the wallet by the signature to the pay_auth_no's, the amounts against the held settlement.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.base import BadSignature, ChannelError, MedInsOrder, MedInsWallet, NotFoundAtChannel, OutcomeUnknown, WalletRequest
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, TooManyAttempts, YibaoError
from yibao.domain.med_ins import Parts, mix_pay_type
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.agency import connectors, payment_institutions, pilots
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.services.care import presence, settlement
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.services.people import persons as people
from yibao.store.rows import one_or
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import med_ins_auths as A
from yibao.store.tables import settlements as S

log = logging.getLogger("yibao.payments")

CODE_TTL = timedelta(minutes=5)  # [guess] the authCode: the wallet exchanges it at once
PAY_AUTH_TTL = timedelta(minutes=10)  # [guess] the pay_auth_no "is valid for minutes" (research §5): until 6202 holds
REQUEST_WINDOW = timedelta(minutes=5)  # [guess] the wallet collects at once after `request`; a replay of it is answered within this
WALLET_CONNECTORS = ("wxpay", "alipay")  # the connectors that carry medical-insurance orders (MedInsWallet)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Auth:
    id: str
    region: str
    person_id: str
    pi_id: str
    status: str
    order_id: str | None
    mix_trade_no: str | None
    expires_at: datetime
    med_inst_no: str | None = None  # the hospital the pay_auth_no was asked for (WeChat's med_inst_no)
    requested_at: datetime | None = None  # when the wallet's `request` was recorded


def _auth(r: Any) -> Auth:
    return Auth(r.id, r.region, r.person_id, r.payment_institution_id, r.status, r.order_id, r.mix_trade_no, as_datetime(r.expires_at),
                r.med_inst_no, as_datetime(r.requested_at) if r.requested_at is not None else None)


def _set(conn: Connection, auth: Auth, now: datetime, **values: Any) -> None:
    conn.execute(update(A).where(A.c.id == auth.id).values(updated_at=now, **values))


# ---- 1. the holder authorises, 2. the wallet exchanges ---------------------------------------------------------

def authorise(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> tuple[Auth, str]:
    """The holder (logged in, PIN checked by the caller) authorises ``pi_id`` to carry one medical-insurance payment of
    theirs: an authCode in clear (answered once; only its hash is kept)."""
    person = people.get(conn, holder_id)
    if person is None or person.status != "active":
        raise NotFound("psn_no", "not_found", "参保人不存在或已停保", "insured person not found or not active")
    inst = payment_institutions.get(conn, pi_id)
    cfg = connectors.get(conn, pi_id)
    if inst is None or inst.status != "admitted" or cfg is None:
        raise NotFound("payment_institution_id", "not_found", "支付机构不存在或未准入", "no such admitted payment institution")
    if inst.region != person.region:  # as credit enrolment: a holder authorises only a wallet admitted in their own region
        raise NotFound("payment_institution_id", "not_in_region", "本统筹区没有该支付机构（只能授权本统筹区准入的支付机构）",
                       "no such payment institution in your region (only a wallet admitted in your region may be authorised)")
    if cfg.connector not in WALLET_CONNECTORS:
        raise Conflict("payment_institution_id", "med_ins_not_supported", "该支付机构暂不支持医保移动支付（目前仅微信支付、支付宝）",
                       "this payment institution does not carry medical-insurance orders here (WeChat Pay and Alipay only)")
    code = secrets.token_hex(16)
    auth_id = "MA" + secrets.token_hex(11).upper()
    conn.execute(A.insert().values(id=auth_id, region=person.region, person_id=person.id, payment_institution_id=pi_id,
                                   code_hash=_digest(code), status="code", expires_at=now + CODE_TTL, updated_at=now, created_at=now))
    audit.append(conn, region=person.region, actor=actor, action="med_ins.authorise", subject=auth_id,
                 detail={"person": person.id, "payment_institution_id": pi_id}, now=now)
    return Auth(auth_id, person.region, person.id, pi_id, "code", None, None, now + CODE_TTL), code


def exchange(conn: Connection, now: datetime, *, pi_id: str, auth_code: str, med_inst_no: str, actor: str) -> tuple[Auth, str]:
    """The wallet (its signature checked by the caller) exchanges the holder's authCode for a pay_auth_no: once, in
    time, only the wallet the holder authorised. Another wallet's code is "not found", as a code that never was.
    ``med_inst_no``: the hospital the wallet asks it for (WeChat's field); only that hospital's 6201 may bind it."""
    r = conn.execute(select(A).where(A.c.code_hash == _digest(auth_code)).with_for_update()).first()
    if r is None or r.payment_institution_id != pi_id:
        raise NotFound("auth_code", "auth_code_not_found", "授权码不存在", "no such authCode")
    auth = _auth(r)
    if auth.status != "code":
        raise Conflict("auth_code", "auth_code_used", "授权码已使用，请参保人重新授权", "the authCode was already used; the holder authorises again")
    if auth.expires_at <= now:
        raise Conflict("auth_code", "auth_code_expired", "授权码已过期，请参保人重新授权", "the authCode has expired; the holder authorises again")
    pay_auth_no = "AUTH" + secrets.token_hex(16).upper()
    _set(conn, auth, now, status="authorised", pay_auth_hash=_digest(pay_auth_no), expires_at=now + PAY_AUTH_TTL, med_inst_no=med_inst_no)
    audit.append(conn, region=auth.region, actor=actor, action="med_ins.pay_auth", subject=auth.id,
                 detail={"payment_institution_id": pi_id, "med_inst_no": med_inst_no}, now=now)
    return Auth(auth.id, auth.region, auth.person_id, pi_id, "authorised", None, None, now + PAY_AUTH_TTL, med_inst_no), pay_auth_no


def _by_pay_auth(conn: Connection, pay_auth_no: str, *, field: str) -> Auth:
    r = conn.execute(select(A).where(A.c.pay_auth_hash == _digest(pay_auth_no)).with_for_update()).first()
    if r is None:
        raise Forbidden(field, "pay_auth_not_found", "payAuthNo 无效（未找到对应授权信息）", "no such pay_auth_no (no authorisation found)")
    return _auth(r)


def _live(auth: Auth, now: datetime, field: str) -> None:
    if auth.status not in ("authorised", "bound"):
        raise Conflict(field, "pay_auth_used", "payAuthNo 已使用，请参保人重新授权", "the pay_auth_no was already used; the holder authorises again")
    if auth.expires_at <= now:
        raise Conflict(field, "pay_auth_expired", "payAuthNo 已过期，请参保人重新授权", "the pay_auth_no has expired; the holder authorises again")


def bind(conn: Connection, now: datetime, *, pay_auth_no: str, order: Order, field: str = "pay_auth_no") -> Auth:
    """6201 carrying a payAuthNo: the holder's authorisation is bound to this order (the patient's own) and no other."""
    auth = _by_pay_auth(conn, pay_auth_no, field=field)
    if auth.order_id == order.id:
        return auth
    if auth.order_id is not None:
        raise Conflict(field, "pay_auth_other_order", "payAuthNo 已绑定另一订单", "the pay_auth_no is bound to another order")
    _live(auth, now, field)
    if auth.person_id != order.person_id:
        raise Forbidden(field, "pay_auth_other_person", "payAuthNo 不是该就诊参保人本人的授权", "the pay_auth_no is not the patient's own authorisation")
    if auth.med_inst_no != order.institution_id:
        raise Forbidden(field, "pay_auth_other_hospital", "payAuthNo 是为另一家医疗机构申请的（med_inst_no 不符）",
                        "the pay_auth_no was obtained for another hospital (its med_inst_no differs)")
    _set(conn, auth, now, status="bound", order_id=order.id)
    return Auth(auth.id, auth.region, auth.person_id, auth.pi_id, "bound", order.id, None, auth.expires_at, auth.med_inst_no)


def _of_order(conn: Connection, order_id: str, *, lock: bool = False) -> Auth | None:
    r = one_or(conn, A, A.c.order_id == order_id, lock=lock)
    return _auth(r) if r else None


# ---- 3. 6202: the pre-settlement held -------------------------------------------------------------------------

def hold(conn: Connection, now: datetime, *, institution: Institution, order: Order, pay_auth_no: str, use_account: bool,
         actor: str, field: str = "pay_auth_no") -> Order:
    """6202 carrying a payAuthNo: the holder's authorisation (bound to this order by 6201, or now) is their presence for
    this visit, used up by the settlement that prices it and holds every fund and account leg (pending; the cash leg is
    not the platform's: the wallet collects it for the hospital). The order is ``held`` and waits for the wallet. The
    same 6202 again (its pay_auth_no used for this order) answers the order as it stands."""
    auth = bind(conn, now, pay_auth_no=pay_auth_no, order=order, field=field) if _of_order(conn, order.id) is None else \
        _by_pay_auth(conn, pay_auth_no, field=field)
    if auth.order_id != order.id:
        raise Conflict(field, "pay_auth_other_order", "payAuthNo 已绑定另一订单", "the pay_auth_no is bound to another order")
    order = payments.require(conn, order.id, lock=True)
    if order.status != po.BILLED:
        return order  # held (or further) by this authorisation already
    _live(auth, now, field)
    pilots.require(conn, now, institution_id=institution.id, mode="mobile")  # the agreement in force when the wallet pays, not only at 6201
    used = presence.record(conn, now, kind="wallet", credential_id=auth.id, institution=institution, person_id=auth.person_id,
                           owner_id=auth.person_id, ttl=PAY_AUTH_TTL, visit_id=order.visit_id) if use_account else None
    doc = settlement.settle(conn, now, institution=institution, visit_id=order.visit_id, msgid=order.id, account=AccountRequest(use=use_account),
                            actor=actor, pending=True, hold_timeout=payments.HOLD_TIMEOUT, cash_leg=False,
                            presence_id=used.id if used else None)
    s = conn.execute(select(S.c.total, S.c.fund_total, S.c.account_pay, S.c.cash_pay).where(S.c.id == doc["setl_id"])).one()
    _set(conn, auth, now, status="used")
    return payments.move(conn, order, po.HOLD, now, actor, setl_id=doc["setl_id"], total=int(s.total), fund_total=int(s.fund_total),
                         account_pay=int(s.account_pay), cash_pay=int(s.cash_pay), payment_institution_id=auth.pi_id, cash_source="wallet")


def parts(conn: Connection, order: Order) -> Parts:
    """The held order's amounts as the wallet's fee parts: `med_ins_gov_fee` the fund but medical assistance,
    `med_ins_other_fee` medical assistance [guess: the meaning of 其他], `med_ins_self_fee` the personal account,
    `med_ins_cash_fee` the self-pay part."""
    assistance = 0
    if order.setl_id is not None:
        assistance = int(conn.execute(select(S.c.assistance).where(S.c.id == order.setl_id)).scalar_one())
    return Parts(gov=order.fund_total - assistance, self_=order.account_pay, other=assistance, cash=order.cash_pay)


# ---- 4. the wallet's mixed order ------------------------------------------------------------------------------

def _wallet_order(conn: Connection, *, pi_id: str, pay_order_id: str, pay_auth_no: str | None = None,
                  mix_trade_no: str | None = None) -> tuple[Order, Auth]:
    """The order ``pay_order_id`` as this wallet may see it: bound to a pay_auth_no this wallet obtained (another's is
    "not found"), the pay_auth_no sent matching, the mixed order (once named) the same."""
    auth = _of_order(conn, pay_order_id, lock=True)
    if auth is None or auth.pi_id != pi_id:
        raise NotFound("pay_order_id", "order_not_found", "医保支付订单不存在", "no such medical-insurance pay order")
    if pay_auth_no is not None and not hmac.compare_digest(
            conn.execute(select(A.c.pay_auth_hash).where(A.c.id == auth.id)).scalar_one() or "", _digest(pay_auth_no)):
        raise Forbidden("pay_auth_no", "pay_auth_mismatch", "pay_auth_no 与该医保支付订单的授权不符", "is not the authorisation of this pay order")
    if mix_trade_no is not None and auth.mix_trade_no is not None and auth.mix_trade_no != mix_trade_no:
        raise Conflict("mix_trade_no", "mix_trade_no_mismatch", "该医保支付订单已有另一笔混合支付订单", "this pay order already has another mixed order")
    return payments.require(conn, pay_order_id, lock=True), auth


def check(conn: Connection, now: datetime, *, pi_id: str, pay_order_id: str, pay_auth_no: str, mix_trade_no: str, mix_pay_type_: str | None,
          sent: Parts) -> Parts:
    """A new mixed order (WeChat's `POST /v3/med-ins/orders`, Alipay's `createandpay`): the wallet asks whether it is the
    held one — the pay_auth_no, the type (a wallet that names one: WeChat's `mix_pay_type`) and each fee part; a
    difference is refused naming the field. The mixed order is bound to the pay order (one only)."""
    order, auth = _wallet_order(conn, pi_id=pi_id, pay_order_id=pay_order_id, pay_auth_no=pay_auth_no, mix_trade_no=mix_trade_no)
    if order.status != po.HELD and not (auth.mix_trade_no == mix_trade_no and order.status not in (po.BILLED, po.VOIDED)):
        raise Conflict("pay_order_id", "order_not_payable", f"医保支付订单状态为 {order.status}，不能下单（须先经 6202 预结算）",
                       f"the pay order is {order.status}: it cannot be ordered (6202 pre-settles it first)")
    held = parts(conn, order)
    for name, mine, theirs in (("med_ins_gov_fee", held.gov, sent.gov), ("med_ins_self_fee", held.self_, sent.self_),
                               ("med_ins_other_fee", held.other, sent.other), ("med_ins_cash_fee", held.cash, sent.cash)):
        if mine != theirs:
            raise InputError(name, "amount_mismatch", f"与医保预结算金额不符（应为 {mine} 分）", f"differs from the insurance pre-settlement ({mine} fen)")
    expected = mix_pay_type(held)
    if mix_pay_type_ is not None and mix_pay_type_ != expected:
        raise InputError("mix_pay_type", "mix_pay_type_mismatch", f"混合支付类型应为 {expected}", f"must be {expected} for this pay order")
    if auth.mix_trade_no is None:
        _set(conn, auth, now, mix_trade_no=mix_trade_no)
    return held


def request_cash(conn: Connection, now: datetime, *, pi_id: str, pay_order_id: str, mix_trade_no: str, actor: str) -> Order:
    """The holder pays in the wallet: recorded ``cash_requested`` BEFORE the wallet collects the self-pay part (a crash
    after this leaves an order recovery asks the wallet about). Only a ``held`` order whose hold outlives
    `REQUEST_WINDOW` may be requested, or the same request again within `REQUEST_WINDOW` of the first (its answer was
    lost). Anything else is refused and the wallet collects nothing: an order in doubt (recovery decides it, and voids it
    once the wallet has not collected within the window — no later request may collect then), a voided one, a completed
    one."""
    order, auth = _wallet_order(conn, pi_id=pi_id, pay_order_id=pay_order_id, mix_trade_no=mix_trade_no)
    if auth.mix_trade_no != mix_trade_no:
        raise Conflict("mix_trade_no", "mix_trade_no_mismatch", "混合支付订单未经下单校验", "the mixed order was not checked at its creation")
    if order.status == po.VOIDED:
        raise Conflict("pay_order_id", "order_voided", "医保支付订单已撤销（预结算已作废），请重新下单", "the pay order was voided (its hold released)")
    if order.status == po.CASH_REQUESTED and auth.requested_at is not None and now < auth.requested_at + REQUEST_WINDOW:
        return order  # the same request again (its answer lost), in time: the same order, nothing moved
    if order.status != po.HELD:
        raise Conflict("pay_order_id", "order_not_payable", f"医保支付订单状态为 {order.status}，不能再发起自费扣款（只有已预结算的订单可以）",
                       f"the pay order is {order.status}: its self-pay part cannot be requested (only a held order's can)")
    if now + REQUEST_WINDOW >= order.updated_at + payments.HOLD_TIMEOUT:  # held since updated_at: nothing moves a held order
        raise Conflict("pay_order_id", "hold_expiring", "医保预结算即将过期，不能再发起自费扣款，请医院重新预结算",
                       "the pay order's hold expires too soon for the self-pay part to be requested: the hospital pre-settles again")
    _set(conn, auth, now, requested_at=now)
    return payments.request_cash(conn, now, order_id=order.id, actor=actor)


SELF_PAY = {"SELF_PAY_SUCCESS": "succeeded", "NO_SELF_PAY": "succeeded", "SELF_PAY_FAIL": "failed"}


def record_result(conn: Connection, now: datetime, *, pi_id: str, pay_order_id: str, mix_trade_no: str, self_pay_status: str,
                  cash_fen: int, actor: str) -> Order:
    """The wallet says what became of the self-pay part: collected → the insurance settlement posted (``completed``);
    failed → the hold voided (``voided``). Only after `request_cash`; a cash amount other than the held one is refused."""
    order, auth = _wallet_order(conn, pi_id=pi_id, pay_order_id=pay_order_id, mix_trade_no=mix_trade_no)
    outcome = SELF_PAY.get(self_pay_status)
    if outcome is None:
        raise InputError("self_pay_status", "invalid_status", "应为 SELF_PAY_SUCCESS、NO_SELF_PAY 或 SELF_PAY_FAIL",
                         "must be SELF_PAY_SUCCESS, NO_SELF_PAY or SELF_PAY_FAIL")
    if auth.mix_trade_no != mix_trade_no:
        raise Conflict("mix_trade_no", "mix_trade_no_mismatch", "混合支付订单未经下单校验", "the mixed order was not checked at its creation")
    if outcome == "succeeded" and cash_fen != order.cash_pay:
        raise InputError("med_ins_cash_fee", "amount_mismatch", f"与医保预结算的自费金额不符（应为 {order.cash_pay} 分）",
                         f"differs from the held self-pay part ({order.cash_pay} fen)")
    if order.status in (po.HELD, po.BILLED):
        raise Conflict("pay_order_id", "cash_not_requested", "医保支付订单尚未发起自费扣款", "the pay order's self-pay part was not requested")
    return payments.record_cash(conn, now, order_id=order.id, outcome=outcome, trade_no=mix_trade_no, actor=actor)


def mix_trade_no_of(conn: Connection, order_id: str) -> str | None:
    auth = _of_order(conn, order_id)
    return auth.mix_trade_no if auth else None


async def _wallet(ctx: Context, pi_id: str) -> MedInsWallet:
    channel = await ctx.channel(pi_id)
    if not (hasattr(channel, "query_med_ins_order") and hasattr(channel, "open_wallet_request")):
        raise Conflict("payment_institution_id", "med_ins_not_supported", "该支付机构暂不支持医保移动支付",
                       "this payment institution does not carry medical-insurance orders here")
    return channel  # type: ignore[return-value]


async def truth(ctx: Context, order: Order) -> MedInsOrder | None:
    """The wallet's mixed order of ``order`` (None: never ordered, or the wallet has none — NotFoundAtChannel)."""
    mix = await ctx.run(lambda c: mix_trade_no_of(c, order.id), write=False)
    if mix is None or order.payment_institution_id is None:
        return None
    wallet = await _wallet(ctx, order.payment_institution_id)
    try:
        return await wallet.query_med_ins_order(mix)
    except NotFoundAtChannel:
        return None


def outcome_of(found: MedInsOrder, order: Order, requested_at: datetime | None, now: datetime) -> str:
    """What the wallet's mixed order says of an order in doubt (an outcome of `orders.record_cash`, or ``refunded``).

    - the self-pay part refunded at the wallet while the insurance part was never settled there (not
      MED_INS_PAY_SUCCESS): ``refunded`` — the order is voided and the anomaly recorded, never completed;
    - the mixed order failed (MIX_PAY_FAIL), or the self-pay part failed: ``failed``;
    - the self-pay part still not collected (SELF_PAY_CREATED) `REQUEST_WINDOW` after the request: ``failed`` — no new
      request is accepted any more (`request_cash`), so the wallet can no longer collect it;
    - collected (or nothing to collect), to the fen: ``succeeded``; anything else: ``unknown``."""
    if found.self_pay_status == "SELF_PAY_REFUND" and found.med_ins_pay_status != "MED_INS_PAY_SUCCESS":
        return "refunded"
    if found.mix_pay_status == "MIX_PAY_FAIL" or found.self_pay_status == "SELF_PAY_FAIL":
        return "failed"
    if found.self_pay_status == "SELF_PAY_CREATED":
        since = requested_at or order.updated_at
        return "failed" if now >= since + REQUEST_WINDOW else "unknown"
    outcome = {"SELF_PAY_SUCCESS": "succeeded", "NO_SELF_PAY": "succeeded", "SELF_PAY_REFUND": "succeeded"}.get(found.self_pay_status, "unknown")
    if outcome == "succeeded" and found.cash_fen != order.cash_pay:
        log.error("med-ins order %s: the wallet reports %s fen of self-pay, we held %s", order.id, found.cash_fen, order.cash_pay)
        return "unknown"
    return outcome


async def ask(ctx: Context, order: Order, *, actor: str, finish: Callable[[Connection, Order], None] | None = None) -> Order:
    """Recovery of an order in doubt: the wallet's query of its mixed order decides (`outcome_of`); no answer keeps it
    in doubt. ``finish`` (cash.py's) runs in the unit that records the answer, as for any other order asked about."""
    auth = await ctx.run(lambda c: _of_order(c, order.id), write=False)
    try:
        found = await truth(ctx, order)
        if found is None:
            outcome = "not_found"
        elif found.pay_order_id != order.id:
            log.error("med-ins order %s: the wallet's mixed order names pay order %s", order.id, found.pay_order_id)
            outcome = "unknown"
        else:
            outcome = outcome_of(found, order, auth.requested_at if auth else None, ctx.now())
    except (OutcomeUnknown, BadSignature, ChannelError, YibaoError) as exc:
        outcome = "unknown"
        log.warning("med-ins order %s: the wallet's query gave no answer (%s)", order.id, exc.code)
    now = ctx.now()
    if outcome == "refunded":
        def refunded(c: Connection) -> Order:
            voided = payments.record_cash(c, now, order_id=order.id, outcome="failed", actor=actor, seen=order.updated_at)
            if voided.status == po.VOIDED and voided.anomaly is None:
                voided = payments.flag_anomaly(c, voided, "cash_refunded_before_settlement", now, actor)
            return _finished(c, voided, finish)
        log.error("med-ins order %s: the wallet shows its self-pay part refunded before the insurance part was settled: voided",
                  order.id)
        return await ctx.run(refunded)
    return await ctx.run(lambda c: _finished(c, payments.record_cash(c, now, order_id=order.id, outcome=outcome, actor=actor,
                                                                     seen=order.updated_at), finish))


def _finished(conn: Connection, order: Order, finish: Callable[[Connection, Order], None] | None) -> Order:
    if finish is not None:
        finish(conn, order)
    return order


async def cash_refunded(ctx: Context, order: Order) -> bool:
    """Whether the hospital's refund of the self-pay part (the normal refund, at the wallet, on its own merchant account)
    shows in the wallet's mixed order (SELF_PAY_REFUND): 6203's cash part is recorded only then."""
    found = await truth(ctx, order)
    return found is not None and found.pay_order_id == order.id and found.self_pay_status == "SELF_PAY_REFUND"


# ---- the wallet's signed requests ------------------------------------------------------------------------------

NONCE_WINDOW = timedelta(minutes=5)  # the signature's time window (WeChat's `_skew_ok`, Alipay's `WALLET_WINDOW_S`)
_CLAIM = Sql("""INSERT INTO wallet_nonces (payment_institution_id, nonce, expires_at, created_at)
                VALUES (:pi_id, :nonce, :expires_at, :now) ON CONFLICT DO NOTHING RETURNING nonce""")
_PURGE = Sql("DELETE FROM wallet_nonces WHERE payment_institution_id = :pi_id AND expires_at < :now")


def claim_nonce(conn: Connection, now: datetime, *, pi_id: str, nonce: str, field: str = "Wechatpay-Nonce") -> None:
    """A signed request's nonce (WeChat's Wechatpay-Nonce, Alipay's notify_id — ``field``) is claimed for two time
    windows (as the FSI gateway claims x-tif-nonce): the same signed request sent again — a replay — is refused,
    whatever it asks."""
    if not 1 <= len(nonce) <= 64:
        raise InputError(field, "invalid_nonce", f"随机数（{field}）应为1–64个字符", "must be 1–64 characters")
    _PURGE(conn, {"pi_id": pi_id, "now": now})
    if _CLAIM(conn, {"pi_id": pi_id, "nonce": nonce, "expires_at": now + 2 * NONCE_WINDOW, "now": now}).first() is None:
        raise Conflict(field, "nonce_reused", f"该随机数（{field}）已使用过，疑似重放请求，不予受理",
                       "this nonce was already used: a replayed request, refused")


def _named(exc: YibaoError, req: WalletRequest) -> YibaoError:
    """The refusal naming the wallet's own field (Alipay's `gov_amount` for the platform's `med_ins_gov_fee`)."""
    if isinstance(exc, TooManyAttempts) or req.name(exc.field) == exc.field:
        return exc
    return type(exc)(req.name(exc.field), exc.code, exc.message_zh, exc.message_en)


async def wallet_request(ctx: Context, pi_id: str, action: str, method: str, path: str, headers: Mapping[str, str],
                         body: bytes) -> dict[str, Any]:
    """A request the wallet sent (it acts for the holder or reports its mixed order): verified by the wallet's connector
    with the wallet's own key (WeChat: over method, path, time, nonce and body; Alipay: as its notifications, over the
    sorted parameters, `notify_type` naming the call), its nonce claimed once, then acted on in one unit and answered in
    the wallet's terms. Unsigned or forged: refused, nothing read. Every refusal names the wallet's field."""
    wallet = await _wallet(ctx, pi_id)
    try:
        req = wallet.open_wallet_request(action, method, path, headers, body)
    except BadSignature:
        field = wallet.wallet_signature_field
        raise Forbidden(field, "bad_signature", "签名验证失败，不予受理", "the signature does not verify: refused") from None
    claimed_at = ctx.now()
    await ctx.run(lambda c: claim_nonce(c, claimed_at, pi_id=pi_id, nonce=req.nonce, field=req.nonce_field))
    try:
        return wallet.wallet_answer(await _act(ctx, pi_id, action, req))
    except YibaoError as exc:
        raise _named(exc, req) from None


async def _act(ctx: Context, pi_id: str, action: str, req: WalletRequest) -> dict[str, Any]:
    data = req.values
    if data is None:
        raise InputError("body", "invalid_object", "应为 JSON 对象或表单", "must be an object (JSON or a form)")
    now = ctx.now()
    actor = f"wallet:{pi_id}"

    def text(key: str, max_length: int = 64) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise InputError(key, "required", "缺少必填字段或格式不符", f"is required (text of at most {max_length} characters)")
        return value

    def fen(key: str) -> int:
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**12:
            raise InputError(key, "invalid_amount", "应为非负金额", "must be a non-negative amount")
        return value

    if action == "pay-auth":
        code, med_inst_no = text("auth_code"), text("med_inst_no", 20)

        def exchanged(c: Connection) -> dict[str, Any]:
            auth, pay_auth_no = exchange(c, now, pi_id=pi_id, auth_code=code, med_inst_no=med_inst_no, actor=actor)
            return {"pay_auth_no": pay_auth_no, "expire_time": iso_utc(auth.expires_at), "psn_no": auth.person_id}
        return await ctx.run(exchanged)
    if action == "check":
        sent = Parts(gov=fen("med_ins_gov_fee"), self_=fen("med_ins_self_fee"), other=fen("med_ins_other_fee"), cash=fen("med_ins_cash_fee"))
        # A wallet that names no mix type (Alipay) sends None; one that does (WeChat) must send it.
        kind = None if "mix_pay_type" in data and data["mix_pay_type"] is None else text("mix_pay_type", 20)
        args = dict(pi_id=pi_id, pay_order_id=text("pay_order_id", 32), pay_auth_no=text("pay_auth_no"), mix_trade_no=text("mix_trade_no"),
                    mix_pay_type_=kind)
        held = await ctx.run(lambda c: check(c, now, sent=sent, **args))
        return {"pay_order_id": args["pay_order_id"], "med_ins_gov_fee": held.gov, "med_ins_self_fee": held.self_,
                "med_ins_other_fee": held.other, "med_ins_cash_fee": held.cash}
    if action == "request":
        pay_order_id, mix = text("pay_order_id", 32), text("mix_trade_no")
        order = await ctx.run(lambda c: request_cash(c, now, pi_id=pi_id, pay_order_id=pay_order_id, mix_trade_no=mix, actor=actor))
        return {"pay_order_id": order.id, "status": order.status}
    if action == "result":
        pay_order_id, mix, status = text("pay_order_id", 32), text("mix_trade_no"), text("self_pay_status", 20)
        cash = fen("med_ins_cash_fee")
        order = await ctx.run(lambda c: record_result(c, now, pi_id=pi_id, pay_order_id=pay_order_id, mix_trade_no=mix,
                                                      self_pay_status=status, cash_fen=cash, actor=actor))
        if order.terminal:
            await his_callbacks.deliver(ctx, order.id)
        return {"pay_order_id": order.id, "status": order.status,
                "med_ins_pay_status": {po.COMPLETED: "MED_INS_PAY_SUCCESS", po.VOIDED: "MED_INS_PAY_FAIL"}.get(order.status,
                                                                                                             "MED_INS_PAY_CREATED")}
    raise NotFound("action", "not_found", "无此接口", "no such call")
