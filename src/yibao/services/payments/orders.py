"""Payment orders: the order, its moves, and the units every kind of payment shares (each one
transaction, none doing I/O). Each kind starts its order in its own module (onecode, face, bills);
cash.py drives it on, calling the institution *between* these units:

1. `hold` — price the visit, hold every fund and account leg (a pending settlement), reserve the
   year's totals, record the order `held`; cash 0 completes right here; cash above the payer's
   password-free limit moves on to `awaiting_confirmation` (confirmation.py).
2. `request_cash` (or `confirmation.record_pin`, after the holder's PIN) — record `cash_requested` BEFORE the call.
3. `record_cash` — the institution's answer: succeeded → post everything (`completed`); declined,
   failed or never seen → void everything (`voided`); no trustworthy answer → `cash_unknown`.

Every transition goes through the domain's table (domain/payment_order.py) and a locked order row,
so two drivers of one order (a retry and recovery, say) cannot both move it. Voiding is allowed
only where no cash can have been collected: before the request, or on the institution's own word.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import pilots
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.people import bindings
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import payment_orders as O

HOLD_TIMEOUT = timedelta(hours=24)  # ledger holds outlive any confirmation or recovery; recovery resolves orders long before
CONFIRM_TTL = timedelta(minutes=10)  # how long the holder has to confirm with the PIN
MAX_PIN_ATTEMPTS = 5
CASH_DESCRIPTION = "医保一码付 个人现金部分"  # what the institution shows the holder: no names, no numbers


@dataclass(frozen=True)
class Order:
    id: str
    region: str
    institution_id: str
    request_key: str
    request_hash: str
    method: str
    visit_id: str
    person_id: str
    payer_id: str
    setl_id: str | None
    terminal_id: str | None
    payment_institution_id: str | None
    status: str
    void_reason: str | None
    total: int
    fund_total: int
    account_pay: int
    cash_pay: int
    trade_no: str | None
    pin_attempts: int
    confirm_expires_at: datetime | None
    anomaly: str | None
    completed_at: datetime | None
    updated_at: datetime
    created_at: datetime
    cash_source: str | None = None  # None: a payment institution; "credit": the payer's credit line
    cash_accepted_at: datetime | None = None  # the institution accepted the cash request (signed), its result not yet known

    @property
    def terminal(self) -> bool:
        return self.status in po.TERMINAL


_utc = as_datetime  # a row read through Core or the driver (store/sql.py): aware UTC either way


def from_row(r: Any) -> Order:
    return Order(r.id, r.region, r.institution_id, r.request_key, r.request_hash, r.method, r.visit_id, r.person_id, r.payer_id, r.setl_id,
                 r.terminal_id, r.payment_institution_id, r.status, r.void_reason, int(r.total), int(r.fund_total), int(r.account_pay),
                 int(r.cash_pay), r.trade_no, int(r.pin_attempts), _utc(r.confirm_expires_at), r.anomaly, _utc(r.completed_at),
                 _utc(r.updated_at), _utc(r.created_at), r.cash_source, _utc(r.cash_accepted_at))


# The payment path's statements as prepared SQL (store/sql.py): Core spent ~100 µs building and keying each of them.
_ORDER = ("id, region, institution_id, request_key, request_hash, method, visit_id, person_id, payer_id, setl_id, terminal_id, "
          "payment_institution_id, status, void_reason, total, fund_total, account_pay, cash_pay, trade_no, pin_attempts, "
          "confirm_expires_at, anomaly, completed_at, updated_at, created_at, cash_source, cash_accepted_at")
_GET = Sql(f"SELECT {_ORDER} FROM payment_orders WHERE id = :id")
_GET_LOCKED = Sql(f"SELECT {_ORDER} FROM payment_orders WHERE id = :id {{lock}}")
_FOR_REQUEST = Sql(f"SELECT {_ORDER} FROM payment_orders WHERE institution_id = :institution_id AND request_key = :request_key")
_INSERT = Sql("""INSERT INTO payment_orders (id, region, institution_id, request_key, request_hash, method, visit_id, person_id, payer_id,
                 paycode_id, terminal_id, status, total, fund_total, account_pay, cash_pay, pin_attempts, updated_at, created_at)
                 VALUES (:id, :region, :institution_id, :request_key, :request_hash, :method, :visit_id, :person_id, :payer_id,
                 :paycode_id, :terminal_id, :status, 0, 0, 0, 0, 0, :now, :now)""")
_SPLIT = Sql("SELECT total, fund_total, account_pay, cash_pay FROM settlements WHERE id = :id")
_MOVED = {f.name for f in fields(Order)}  # what `move` may set besides status and updated_at (paycode_id is not an Order field)


@functools.lru_cache(maxsize=64)
def _update(names: tuple[str, ...]) -> Sql:
    return Sql(f"UPDATE payment_orders SET status = :status, updated_at = :updated_at{''.join(f', {n} = :{n}' for n in names)} WHERE id = :id")


def get(conn: Connection, order_id: str, *, lock: bool = False) -> Order | None:
    r = (_GET_LOCKED if lock else _GET)(conn, {"id": order_id}).first()
    return from_row(r) if r else None


def require(conn: Connection, order_id: str, *, lock: bool = False) -> Order:
    order = get(conn, order_id, lock=lock)
    if order is None:
        raise NotFound("payment_id", "not_found", "支付单不存在", "payment not found")
    return order


def for_request(conn: Connection, institution_id: str, request_key: str) -> Order | None:
    r = _FOR_REQUEST(conn, {"institution_id": institution_id, "request_key": request_key}).first()
    return from_row(r) if r else None


def move(conn: Connection, order: Order, event: str, now: datetime, actor: str, **values: Any) -> Order:
    """Apply one event: the domain decides the next state; the row is updated; the move is audited.

    ``order`` is the row as this unit read it under its lock (or wrote it since): the moved order is that plus what
    this move set, with no second read."""
    return moves(conn, order, ((event, values),), now, actor)


def moves(conn: Connection, order: Order, steps: tuple[tuple[str, dict[str, Any]], ...], now: datetime, actor: str, *,
          after_first: Callable[[], None] | None = None) -> Order:
    """Several events in a row, in one unit: each decided by the domain and audited as `move` would, the row updated
    ONCE with where they end. payment_orders has its status indexed, so each UPDATE writes a new entry in every index
    of the table: the hold and the cash request in one statement instead of two (issue 13). ``after_first`` runs
    between the first event and the next (the posting of a payment with no cash: the audit trail keeps that order)."""
    moved, written = order, {}
    for i, (event, values) in enumerate(steps):
        if i == 1 and after_first is not None:
            after_first()
        after = po.transition(moved.status, event)
        assert set(values) <= _MOVED, values
        audit.append(conn, region=order.region, actor=actor, action=f"payment.{event}", subject=order.id,
                     detail={"from": moved.status, "to": after, "cash_pay": moved.cash_pay,
                             **{k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in values.items()}}, now=now)
        moved = replace(moved, status=after, updated_at=now, **values)
        written.update(values)
    names = tuple(sorted(written))
    _update(names)(conn, {**written, "status": moved.status, "updated_at": now, "id": order.id})
    if moved.method in ("mobile", "medins") and moved.status in (po.COMPLETED, po.VOIDED, po.PARTIALLY_REFUNDED, po.REFUNDED):
        # The hospital did not see this payment happen (the holder paid in the app, or in a wallet): it learns the
        # result by a signed callback, written to the outbox in this same unit (delivered after it: callbacks.py).
        his_callbacks.enqueue(conn, now, institution_id=moved.institution_id, region=moved.region, order_id=moved.id,
                              event=f"payment.{moved.status}", payload=receipt(conn, moved))
    return moved


# ---- the payer's binding and agreement -------------------------------------------------------------


# ---- 1. hold ---------------------------------------------------------------------------------------


def _new_id(now: datetime) -> str:
    return f"PO{now:%Y%m%d}{secrets.token_hex(7).upper()}"  # 24 letters and digits: every institution's out_trade_no


def visit_for(conn: Connection, now: datetime, institution: Institution, person_id: str, visit_id: str | None,
               lines: list[dict] | None, person: Any = None) -> visits.Visit:
    """The visit a payment pays: the one named, or one opened here with ``lines`` (``person``: the patient as this unit
    read them already)."""
    if (visit_id is None) == (lines is None):
        raise InputError("visit_id", "visit_or_lines", "请给出 visit_id（已上传明细）或 lines（明细）之一",
                         "give either visit_id (fee lines already uploaded) or lines")
    if visit_id is not None:
        visit = visits.get(conn, institution.id, visit_id)
        if visit.person_id != person_id:  # the code is someone else's: nothing may move
            raise Conflict("visit_id", "visit_other_person", "该支付码不属于此次就诊的参保人", "the payment code belongs to another person than the visit's")
        visits.refuse_if_billed(conn, visit.id)
        return visit
    kind = "pharmacy" if institution.kind == "pharmacy" else "outpatient"
    opened = visits.open_visit_for(conn, now, institution=institution, person_id=person_id, kind=kind, person=person)
    # Opened in this unit: no lines or bill to read back, the patient already read, no list wanted.
    visits.upload_lines(conn, now, institution=institution, visit_id=opened.visit.id, items=lines or [], opened=opened)
    return opened.visit


def insert_order(conn: Connection, now: datetime, *, institution: Institution, request_key: str, request_hash: str, method: str,
                  visit: visits.Visit, person_id: str, payer_id: str, paycode_id: int | None, terminal_id: str | None, actor: str,
                  status: str = po.CREATED) -> Order:
    order_id = _new_id(now)
    _INSERT(conn, dict(id=order_id, region=visit.region, institution_id=institution.id, request_key=request_key, request_hash=request_hash,
                       method=method, visit_id=visit.id, person_id=person_id, payer_id=payer_id, paycode_id=paycode_id,
                       terminal_id=terminal_id, status=status, now=now))
    audit.append(conn, region=visit.region, actor=actor, action="payment.create", subject=order_id,
                 detail={"method": method, "visit": visit.id, "person": person_id, "payer": payer_id}, now=now)
    return Order(order_id, visit.region, institution.id, request_key, request_hash, method, visit.id, person_id, payer_id, None, terminal_id,
                 None, status, None, 0, 0, 0, 0, None, 0, None, None, None, now, now)  # as inserted: no read back


def existing_for(conn: Connection, institution: Institution, request_key: str, request_hash: str) -> Order | None:
    existing = for_request(conn, institution.id, request_key)
    if existing is not None and existing.request_hash != request_hash:
        raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                       "this Idempotency-Key was already used for a different request")
    return existing


def hold(conn: Connection, now: datetime, *, order_id: str, institution: Institution, use_account: bool, actor: str,
         pi_id: str | None = None, holder_present: bool = False, pin_verified: bool = False, pay_by: str = "channel",
         presence_id: str | None = None, created: Order | None = None,
         request_cash_if: Callable[[Order], bool] | None = None) -> Order:
    """Second unit: price the visit and hold every fund and account leg (a pending settlement), reserve the
    year's totals, and decide what follows: cash 0 completes here; cash above the payer's password-free
    limit waits for the holder; else the order stays ``held`` for the cash request. An order past
    ``created`` is returned as it is. A failure raises and rolls this unit back (the caller voids the order).

    A mobile bill (``billed``) is held the same way when its holder pays it in the app: ``pi_id`` is the
    institution they chose (else their default), and the holder is present (``holder_present``): no
    password-free limit applies, but cash above 0 needs the PIN checked before (``pin_verified``).

    With the account, the settlement uses up the presence its flow bound to the visit (the code scanned, the face
    verified) or ``presence_id`` (the holder's own act in the app): services/care/presence.py.

    ``created``: the order as this same unit inserted it (`insert_order`; never one read from the table): nobody else can
    see it before the commit, so it is neither read again nor locked.

    ``request_cash_if``: asked, with the order as it is about to be held, whether its cash is requested now (the
    institution is called after this unit commits): if so the order goes on to ``cash_requested`` in the same UPDATE."""
    if created is not None and created.id == order_id and created.status == po.CREATED:
        order = created
    else:
        order = require(conn, order_id, lock=True)
    if order.status not in (po.CREATED, po.BILLED):
        return order
    guardian_pays = order.payer_id != order.person_id  # a guardian showing a child's code pays from their own binding
    if not use_account:
        account = AccountRequest(use=False)
    elif guardian_pays:
        account = AccountRequest(use=True, payer="guardian", payer_person_id=order.payer_id)
    else:
        account = AccountRequest(use=True)
    by_credit = pay_by == "credit"
    if by_credit:  # the cash from the payer's credit line at their bank: enrolled, or refused before anything is held
        from yibao.services.credit import lines as credit

        pilots.require(conn, now, institution_id=institution.id, mode="credit")

        pi_id = credit.holder_enrolment(conn, order.payer_id, pi_id).payment_institution_id
    priced: list[Any] = []
    doc = settlement.settle(conn, now, institution=institution, visit_id=order.visit_id, msgid=order.id, account=account, actor=actor,
                            pending=True, hold_timeout=HOLD_TIMEOUT, cash_leg=not by_credit, presence_id=presence_id, priced=priced)
    s = priced[0] if priced else _SPLIT(conn, {"id": doc["setl_id"]}).first()  # the split as priced now, or as stored (a replay)
    binding = bindings.default_binding(conn, order.payer_id, pi_id) if s.cash_pay else None
    if by_credit and s.cash_pay and binding is None:  # the line is the bank's; a payer who has not bound it confirms every time
        binding = bindings.Binding(pi_id, 0)
    if s.cash_pay and binding is None:
        if pi_id is not None:
            raise Conflict("payment_institution_id", "not_bound", "付款人未绑定该支付机构", "the payer has not bound this payment institution")
        raise Conflict("payment_institution_id", "no_default_binding", "付款人未绑定可用的支付机构，无法支付现金部分",
                       "the payer has no usable default payment institution for the cash share")
    if holder_present and s.cash_pay and not pin_verified:  # the amount changed since the preview the PIN was asked for
        raise Conflict("pin", "pin_required", "需要支付密码确认现金部分", "the cash share needs the payment PIN")
    held = (po.HOLD, {"setl_id": doc["setl_id"], "total": int(s.total), "fund_total": int(s.fund_total), "account_pay": int(s.account_pay),
                      "cash_pay": int(s.cash_pay), "payment_institution_id": binding.payment_institution_id if binding else None,
                      "cash_source": "credit" if by_credit and s.cash_pay else None})
    limit = int(s.cash_pay) if holder_present else (binding.password_free_limit if binding else 0)  # present: confirmed in the app
    event = po.first_event_after_hold(int(s.cash_pay), limit)
    if event == po.NO_CASH:
        return moves(conn, order, (held, (po.NO_CASH, {"completed_at": now})), now, actor,
                     after_first=lambda: settlement.post_settlement(conn, now, setl_id=doc["setl_id"], actor=actor))
    if event == po.ASK_HOLDER:
        return moves(conn, order, (held, (po.ASK_HOLDER, {"confirm_expires_at": now + CONFIRM_TTL})), now, actor)
    if request_cash_if is not None and request_cash_if(replace(order, status=po.HELD, updated_at=now, **held[1])):
        return moves(conn, order, (held, (po.REQUEST_CASH, {})), now, actor)  # held and the cash requested: one UPDATE
    return moves(conn, order, (held,), now, actor)  # held: the flow records the cash request next, then calls the institution


# ---- 2. the cash request ---------------------------------------------------------------------------


def request_cash(conn: Connection, now: datetime, *, order_id: str, actor: str, resend: bool = False) -> Order:
    """Record that the institution is about to be asked for the cash (held → cash_requested).

    An order already requested is returned unchanged: the caller asks again with the same
    out_trade_no, which the institution treats as the same trade. An order already ended (a second
    copy of the same request finished it between our read and this lock) is returned as it is; the
    callers stop on a terminal order.

    ``resend``: a retry is about to send the request of a ``cash_requested`` order again; its time is moved to now, so
    recovery's grace starts again and a recovery that read the order before cannot void it on a stale "not found"
    (`record_cash` ``seen``).
    """
    order = require(conn, order_id, lock=True)
    if resend and order.status == po.CASH_REQUESTED:
        conn.execute(update(O).where(O.c.id == order.id).values(updated_at=now))
        return require(conn, order.id)
    if order.status in po.CASH_IN_DOUBT or order.terminal:
        return order
    return move(conn, order, po.REQUEST_CASH, now, actor)


# ---- 3. the institution's answer --------------------------------------------------------------------

OUTCOMES = {"succeeded": po.CASH_SUCCEEDED, "declined": po.DECLINED, "failed": po.CASH_FAILED, "not_found": po.CASH_NOT_FOUND,
            "unknown": po.CASH_UNKNOWN}


def record_cash(conn: Connection, now: datetime, *, order_id: str, outcome: str, trade_no: str | None = None, actor: str,
                seen: datetime | None = None, accepted: bool = False) -> Order:
    """What the institution said about the cash: complete, void, or keep asking.

    Only an order whose cash was requested can take it. A success for an order already voided (the
    institution collected after all) is not undone silently: it is marked as an anomaly to refund.
    ``seen``: the order's time when the caller decided to ask; an answer that would void it is dropped if the order
    moved since (a retry sent its request again meanwhile: the trade may be collected now) — it is asked again later.
    ``accepted``: with outcome unknown, the institution answered, signed, that it accepted the request (its result comes
    later): the first such answer is kept on the order (``cash_accepted_at``), and its "not found" is believed only after
    a long wait (cash.ask).
    """
    event = OUTCOMES[outcome]
    order = require(conn, order_id, lock=True)
    if seen is not None and outcome != "succeeded" and not order.terminal and order.updated_at != seen:
        return order
    if order.terminal:
        if order.status == po.VOIDED and outcome == "succeeded" and order.anomaly is None:
            return flag_anomaly(conn, order, "cash_after_void", now, actor, trade_no=trade_no)
        return order
    if order.status not in po.CASH_IN_DOUBT:
        raise po.IllegalTransition(order.status, event)
    if event == po.CASH_SUCCEEDED:
        settlement.post_settlement(conn, now, setl_id=order.setl_id, actor=actor)
        return move(conn, order, event, now, actor, trade_no=trade_no, completed_at=now)
    if event == po.CASH_UNKNOWN:
        if accepted and order.cash_accepted_at is None:
            return move(conn, order, event, now, actor, cash_accepted_at=now)
        return move(conn, order, event, now, actor)
    return void_now(conn, order, event, now, actor)


def flag_anomaly(conn: Connection, order: Order, anomaly: str, now: datetime, actor: str, *, trade_no: str | None = None) -> Order:
    """Mark an ended order with an anomaly an operator settles (money moved outside what the order says): the one write of
    ``anomaly``. ``trade_no``: the institution's number of the money, when it names one."""
    values: dict[str, Any] = {"anomaly": anomaly, "updated_at": now}
    if trade_no is not None:
        values["trade_no"] = trade_no
    conn.execute(update(O).where(O.c.id == order.id).values(**values))
    audit.append(conn, region=order.region, actor=actor, action="payment.anomaly", subject=order.id,
                 detail={"anomaly": anomaly, "cash_pay": order.cash_pay, "trade_no": trade_no}, now=now)
    return replace(order, anomaly=anomaly, updated_at=now, trade_no=trade_no if trade_no is not None else order.trade_no)


def void_now(conn: Connection, order: Order, event: str, now: datetime, actor: str) -> Order:
    after = po.transition(order.status, event)  # refuse before touching the settlement
    assert after == po.VOIDED
    if order.setl_id is not None:  # a created order holds nothing yet
        settlement.void_settlement(conn, now, setl_id=order.setl_id, reason=event, actor=actor)
    return move(conn, order, event, now, actor, void_reason=event)


def void(conn: Connection, now: datetime, *, order_id: str, event: str, actor: str, only_from: tuple[str, ...] | None = None) -> Order:
    """Void an order for ``event`` (a void event of the domain). A voided order is returned as it is.

    ``only_from``: do nothing unless the order is (still) in one of these states — for recovery,
    which decided from a read that may be stale by now.
    """
    if event not in po.VOID_EVENTS:
        raise ValueError(f"{event} is not a void event")
    order = require(conn, order_id, lock=True)
    if order.status == po.VOIDED or (only_from is not None and order.status not in only_from):
        return order
    return void_now(conn, order, event, now, actor)


# ---- confirmation by the holder ---------------------------------------------------------------------


# ---- notifications ----------------------------------------------------------------------------------


# ---- recovery's reads ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stranded:
    in_doubt: list[Order]  # cash requested, answer unknown: ask the institution
    held: list[Order]  # created or held, never requested, and the request that made them is gone
    expired: list[Order]  # the holder did not confirm in time


MEDINS_WAIT = timedelta(minutes=15)  # a med-ins order held for a wallet that never ordered it: voided after (services/payments/medins.py, step 5)


def stranded(conn: Connection, now: datetime, *, cash_grace: timedelta, held_grace: timedelta, limit: int = 500,
             medins_wait: timedelta = MEDINS_WAIT) -> Stranded:
    """A med-ins order (method ``medins``) is held for the wallet's order and the holder's payment there, not for a call of
    ours: it is abandoned after ``medins_wait``, not ``held_grace``."""
    def rows(*where: Any) -> list[Order]:
        return [from_row(r) for r in conn.execute(select(O).where(*where).order_by(O.c.updated_at).limit(limit)).all()]

    return Stranded(rows(O.c.status.in_(po.CASH_IN_DOUBT), O.c.updated_at <= now - cash_grace),
                    rows(O.c.status.in_((po.CREATED, po.HELD)), O.c.method != "medins", O.c.updated_at <= now - held_grace)
                    + rows(O.c.status == po.HELD, O.c.method == "medins", O.c.updated_at <= now - medins_wait),
                    rows(O.c.status == po.AWAITING_CONFIRMATION, O.c.confirm_expires_at <= now))


# ---- views ------------------------------------------------------------------------------------------


def receipt(conn: Connection, order: Order) -> dict[str, Any]:
    """The one document a payment answers with: the split (fund by layer, account, cash) and where the cash went."""
    s = settlement.split(conn, order.setl_id) if order.setl_id else None
    fund = {"pool": 0, "serious_illness": 0, "large_amount": 0, "other": 0, "assistance": 0}
    if s is not None:
        fund = {"pool": int(s.pool_fund), "serious_illness": int(s.serious_illness), "large_amount": int(s.large_amount),
                "other": int(s.other), "assistance": int(s.assistance)}
    in_progress = order.status in (po.BILLED, po.REFUNDING, po.HELD, po.CASH_REQUESTED, po.CASH_UNKNOWN, po.AWAITING_CONFIRMATION)
    return {
        "payment_id": order.id, "method": order.method, "status": order.status, "void_reason": order.void_reason,
        "in_progress": in_progress, "anomaly": order.anomaly,
        "setl_id": order.setl_id, "mdtrt_id": order.visit_id, "psn_no": order.person_id, "payer_psn_no": order.payer_id,
        "fixmedins_code": order.institution_id, "terminal_id": order.terminal_id,
        "total": format_yuan(order.total),
        "fund": {**{k: format_yuan(v) for k, v in fund.items()}, "total": format_yuan(order.fund_total)},
        "account": {"amount": format_yuan(order.account_pay), "account_id": s.account_id if s is not None and order.account_pay else None},
        "cash": {"amount": format_yuan(order.cash_pay), "payment_institution_id": order.payment_institution_id, "out_trade_no": order.id,
                 "trade_no": order.trade_no},
        "confirm_expires_at": iso_utc(order.confirm_expires_at) if order.status == po.AWAITING_CONFIRMATION else None,
        "created_at": iso_utc(order.created_at), "completed_at": iso_utc(order.completed_at), "updated_at": iso_utc(order.updated_at),
    }


def of_settlement(conn: Connection, institution_id: str, setl_id: str) -> Order | None:
    """The payment order that carried this institution's settlement to money (one-code, face or mobile), if any:
    its receipt then says how the cash went (a payment institution or a credit line), not "collect at the counter"."""
    r = conn.execute(select(O).where(O.c.institution_id == institution_id, O.c.setl_id == setl_id)).first()
    return from_row(r) if r else None


def for_institution(conn: Connection, institution_id: str, order_id: str) -> Order:
    order = get(conn, order_id)
    if order is None or order.institution_id != institution_id:
        raise NotFound("payment_id", "not_found", "支付单不存在", "payment not found")
    return order
