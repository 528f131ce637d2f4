"""The SANDBOX institutions' shared machinery: in-memory books, knobs, failure injection.

Every sandbox institution (wxpay, alipay, unionpay, bank) keeps the same kind of books —
password-free agreements, trades, refunds — and differs in its wire format and signatures,
which live in its own module. Nothing here is a real payment institution's behaviour beyond the
shape: it is what a test or the demo needs to be told "no", "later", or nothing at all.

State is guarded by a threading lock: the books are touched from the sandbox's event loop and,
through the Python object, from a test's thread. No lock is held across an await.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from yibao.channels.wire import china_time


class Knobs(BaseModel):
    """Failure injection. Rates are shares of calls (0 … 1), drawn from the sandbox's seeded random."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: int = Field(0, ge=0, le=60_000, description="added before every business call")
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="payments, refunds and signings definitely declined")
    server_error_rate: float = Field(0.0, ge=0.0, le=1.0, description="answered 5xx before anything happens")
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0, description="the effect happens, then the answer hangs for hang_ms")
    hang_ms: int = Field(10_000, ge=0, le=600_000, description="how long a timed-out answer hangs (longer than the client waits)")
    cut_answer_rate: float = Field(0.0, ge=0.0, le=1.0, description="the effect happens, then the connection is cut mid-answer "
                                   "(a lost answer at once, without waiting out the client's timeout)")
    settle_delay_ms: int = Field(0, ge=0, le=600_000, description="payments answer 'processing' and succeed after this delay")
    visible_delay_ms: int = Field(0, ge=0, le=86_400_000, description="an accepted payment is not found by a query until this long "
                                  "after it was booked (a slow institution's books: the order was accepted, the query says no such order)")
    drop_notification_rate: float = Field(0.0, ge=0.0, le=1.0, description="notifications never sent")
    duplicate_notification_rate: float = Field(0.0, ge=0.0, le=1.0, description="notifications sent twice")
    bad_notification_signature: bool = Field(False, description="notifications carry a wrong signature")
    notify_delays_ms: list[int] | None = Field(None, max_length=20, description="resend delays; null: the sandbox's configured ones")
    seed: int | None = Field(None, description="reseeds the sandbox's random (reproducible failure patterns)")


class KnobsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(None, ge=0, le=60_000)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    server_error_rate: float | None = Field(None, ge=0.0, le=1.0)
    timeout_rate: float | None = Field(None, ge=0.0, le=1.0)
    hang_ms: int | None = Field(None, ge=0, le=600_000)
    cut_answer_rate: float | None = Field(None, ge=0.0, le=1.0)
    settle_delay_ms: int | None = Field(None, ge=0, le=600_000)
    visible_delay_ms: int | None = Field(None, ge=0, le=86_400_000)
    drop_notification_rate: float | None = Field(None, ge=0.0, le=1.0)
    duplicate_notification_rate: float | None = Field(None, ge=0.0, le=1.0)
    bad_notification_signature: bool | None = None
    notify_delays_ms: list[int] | None = Field(None, max_length=20)
    seed: int | None = None


@dataclass(frozen=True)
class AgreementRec:
    out_agreement_no: str
    agreement_no: str
    holder_token: str
    limit_fen: int
    status: str  # active | terminated
    at: datetime


@dataclass(frozen=True)
class TradeRec:
    out_trade_no: str
    trade_no: str
    amount_fen: int
    description: str
    agreement_no: str
    status: str  # succeeded | processing | failed
    error_code: str | None
    created_at: datetime
    paid_at: datetime | None = None
    refunded_fen: int = 0
    notify_url: str | None = None
    settles_at: datetime | None = None


@dataclass(frozen=True)
class RefundRec:
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    trade_no: str
    amount_fen: int
    status: str  # succeeded | failed
    error_code: str | None
    at: datetime
    notify_url: str | None = None


@dataclass
class SigningSession:
    """A holder's signing on the institution's page (signing_page.py): opened by the merchant's call or redirect,
    ended by the holder confirming or declining on the page."""

    id: str
    out_agreement_no: str
    holder_token: str
    limit_fen: int
    merchant: str  # what the page names as the merchant
    display_name: str  # the holder's account as the merchant names it
    return_url: str | None
    notify_url: str | None
    status: str = "open"  # open | signed | declined | failed
    agreement_no: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Event:
    """Something the institution tells the platform about, asynchronously."""

    kind: str  # payment | refund | agreement | credit
    event_id: str
    record: Any
    notify_url: str | None


class StatementFaults(BaseModel):
    """What the next statements get wrong (SANDBOX only: reconciliation tests). Keys are our numbers: an out_trade_no
    for a trade, an out_refund_no for a refund. The summary still adds up: the faults are in the rows themselves."""

    model_config = ConfigDict(extra="forbid")

    alter: dict[str, int] = Field(default_factory=dict, description="key → the amount (fen) the statement shows instead")
    drop: list[str] = Field(default_factory=list, max_length=1000, description="keys left out of the statement")
    duplicate: list[str] = Field(default_factory=list, max_length=1000, description="keys listed twice")


class IndexedDict(dict):  # type: ignore[type-arg]
    """A dict that keeps indexes beside it in step with every write, whoever writes (the books, the bank's restore, the
    demo, a test), so that a lookup by something other than the key costs no scan of the whole history.

    ``_seq`` is each key's place in the dict's order (a key written again keeps its place, as in a dict): where a scan
    found the first match in dict order, the index finds the same one."""

    def __init__(self) -> None:
        super().__init__()
        self._seq: dict[Any, int] = {}
        self._count = itertools.count()

    def _index(self, key: Any, value: Any) -> None:
        """Add ``value`` under ``key`` to the subclass's indexes (here: none, a dict that only keeps each key's place)."""

    def _unindex(self, key: Any, value: Any) -> None:
        """Take ``value`` under ``key`` out of the subclass's indexes (here: none)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self:
            self._unindex(key, dict.__getitem__(self, key))
        else:
            self._seq[key] = next(self._count)
        dict.__setitem__(self, key, value)
        self._index(key, value)

    def __delitem__(self, key: Any) -> None:
        self._unindex(key, dict.__getitem__(self, key))  # out of the indexes first: a lookup never finds a key gone
        dict.__delitem__(self, key)
        del self._seq[key]

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[Any, Any]:
        if not self:
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def update(self, *args: Any, **kw: Any) -> None:
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def __ior__(self, other: Any) -> IndexedDict:
        self.update(other)
        return self

    def _first(self, keys: dict[Any, None] | None) -> Any:
        """The value under the first of ``keys`` in dict order, or None."""
        if not keys:
            return None
        key = next(iter(keys)) if len(keys) == 1 else min(keys, key=self._seq.__getitem__)
        return dict.__getitem__(self, key)

    @staticmethod
    def _add(index: dict[Any, dict[Any, None]], value: Any, key: Any) -> None:
        index.setdefault(value, {})[key] = None

    @staticmethod
    def _drop(index: dict[Any, dict[Any, None]], value: Any, key: Any) -> None:
        keys = index.get(value)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del index[value]


class Agreements(IndexedDict):
    """out_agreement_no → agreement, indexed by the institution's agreement_no too."""

    def __init__(self) -> None:
        super().__init__()
        self._by_no: dict[str, dict[str, None]] = {}

    def _index(self, key: str, rec: AgreementRec) -> None:
        self._add(self._by_no, rec.agreement_no, key)

    def _unindex(self, key: str, rec: AgreementRec) -> None:
        self._drop(self._by_no, rec.agreement_no, key)

    def by_no(self, agreement_no: str) -> AgreementRec | None:
        """The first agreement (in the dict's order) with this agreement_no."""
        return self._first(self._by_no.get(agreement_no))


class Trades(IndexedDict):
    """out_trade_no → trade, indexed by the institution's trade number (or what an institution finds a trade by: a key of
    the trade number, ``trade_key``), and the trades still open: processing, or due to settle (``settles_at``)."""

    def __init__(self, trade_key: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._trade_key = trade_key or (lambda trade_no: trade_no)
        self._by_trade_no: dict[str, dict[str, None]] = {}
        self._open: dict[str, None] = {}

    def _index(self, key: str, rec: TradeRec) -> None:
        self._add(self._by_trade_no, self._trade_key(rec.trade_no), key)
        if rec.status == "processing" or rec.settles_at is not None:
            self._open[key] = None

    def _unindex(self, key: str, rec: TradeRec) -> None:
        self._drop(self._by_trade_no, self._trade_key(rec.trade_no), key)
        self._open.pop(key, None)

    def by_trade_no(self, trade_no: str | None) -> TradeRec | None:
        """The first trade (in the dict's order) whose ``trade_key(trade_no)`` is this."""
        return None if trade_no is None else self._first(self._by_trade_no.get(trade_no))

    def open(self) -> list[tuple[str, TradeRec]]:
        """The open trades (processing or due to settle), in the dict's order."""
        keys = sorted(self._open, key=self._seq.__getitem__) if len(self._open) > 1 else list(self._open)
        return [(key, dict.__getitem__(self, key)) for key in keys]

    def settling(self) -> bool:
        """Whether a trade is due to settle later (a delayed payment)."""
        return any(dict.__getitem__(self, key).settles_at is not None for key in self._open)


class Refunds(IndexedDict):
    """out_refund_no → refund, indexed by the trade refunded."""

    def __init__(self) -> None:
        super().__init__()
        self._by_trade: dict[str, dict[str, None]] = {}

    def _index(self, key: str, rec: RefundRec) -> None:
        self._add(self._by_trade, rec.out_trade_no, key)

    def _unindex(self, key: str, rec: RefundRec) -> None:
        self._drop(self._by_trade, rec.out_trade_no, key)

    def of_trade(self, out_trade_no: str) -> list[RefundRec]:
        """The trade's refunds, in the dict's order."""
        keys = sorted(self._by_trade.get(out_trade_no, ()), key=self._seq.__getitem__)
        return [dict.__getitem__(self, key) for key in keys]


class SandboxRefusal(Exception):
    """A business refusal the sandbox answers, in its own words, with a stable code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


class AnswerCut(Exception):
    """The cut_answer_rate knob fired: the effect is booked and the answer must not arrive whole. Turned by the
    sandbox app (admin.install) into an answer begun and then cut off with the connection."""


class Books:
    """One sandbox institution's books, knobs, clock and random."""

    def __init__(self, prefix: str, *, seed: int | None = None, clock: Callable[[], datetime] | None = None,
                 knobs: Knobs | None = None, trade_key: Callable[[str], str] | None = None) -> None:
        """``trade_key``: what the institution finds a trade by, from its trade number (``trades.by_trade_no``)."""
        self.prefix = prefix
        self.lock = threading.Lock()
        self.knobs = knobs or Knobs(seed=seed)
        self.random = random.Random(seed)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.clock_offset = timedelta(0)
        # Indexed dicts: a payment, a query or the notifier's turn costs the same with a long history as with none.
        self.agreements = Agreements()
        self.trades = Trades(trade_key)
        self.refunds = Refunds()
        self.signings: dict[str, SigningSession] = {}
        self.calls = 0
        self.faults = StatementFaults()
        self._ids = itertools.count(1)
        self.on_event: Callable[[Event], None] = lambda event: None  # set by the notifier
        self.on_delayed: Callable[[], None] = lambda: None  # set by the notifier: a delayed payment needs its loop awake

    # -- time, ids, randomness --
    def now(self) -> datetime:
        """Business time: stamps trades and decides due dates; the admin clock knob moves it."""
        return self._clock() + self.clock_offset

    def wall(self) -> datetime:
        """Real time, for signature timestamps and their freshness (moving the business clock must not break signatures)."""
        return self._clock()

    def new_id(self, kind: str) -> str:
        return f"{self.prefix}{kind}{china_time(self.now()):%Y%m%d}{next(self._ids):010d}"

    def chance(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.random.random() < rate

    def set_knobs(self, patch: dict[str, Any]) -> Knobs:
        with self.lock:
            self.knobs = self.knobs.model_copy(update=patch)
            if patch.get("seed") is not None:
                self.random.seed(patch["seed"])
            return self.knobs

    # -- failure injection around a business call --
    async def before_call(self) -> None:
        """Latency first, then an injected server error (nothing has happened yet)."""
        self.calls += 1
        if self.knobs.latency_ms:
            await asyncio.sleep(self.knobs.latency_ms / 1000)
        if self.chance(self.knobs.server_error_rate):
            raise SandboxRefusal("SYSTEM_ERROR", "injected server error (server_error_rate knob)", 500)

    async def after_effect(self) -> None:
        """The effect is booked; now, perhaps, the answer is lost: hang past the client's patience (timeout_rate), or
        cut the connection mid-answer (cut_answer_rate: `AnswerCut`)."""
        if self.chance(self.knobs.timeout_rate):
            await asyncio.sleep(self.knobs.hang_ms / 1000)
        if self.chance(self.knobs.cut_answer_rate):
            raise AnswerCut("SANDBOX: the answer is cut on purpose (cut_answer_rate knob)")

    def _emit(self, kind: str, record: Any, notify_url: str | None) -> None:
        self.on_event(Event(kind, self.new_id("N"), record, notify_url))

    # -- agreements --
    def open_signing(self, out_agreement_no: str, holder_token: str, limit_fen: int, *, merchant: str, display_name: str,
                     return_url: str | None, notify_url: str | None) -> SigningSession:
        """A signing session for the holder's page. An agreement number signed already with other parameters is refused."""
        with self.lock:
            existing = self.agreements.get(out_agreement_no)
            if existing is not None and existing.status == "active" and (existing.holder_token, existing.limit_fen) != (holder_token, limit_fen):
                raise SandboxRefusal("OUT_AGREEMENT_NO_USED", "the agreement number was used with other parameters")
            session = SigningSession(self.new_id("S"), out_agreement_no, holder_token, limit_fen, merchant, display_name, return_url, notify_url)
            self.signings[session.id] = session
            return session

    def signing(self, session_id: str) -> SigningSession:
        with self.lock:
            session = self.signings.get(session_id)
        if session is None:
            raise SandboxRefusal("SESSION_NOT_EXIST", "签约会话不存在或已过期 (no such signing session)", 404)
        return session

    def finish_signing(self, session_id: str, *, confirm: bool) -> SigningSession:
        """The holder's choice on the page: confirmed, the agreement is signed (and notified, to the session's notify
        URL); declined, nothing is signed or notified (WeChat and Alipay tell nothing of a declined signing). A session
        ends once: a second choice is answered with the first."""
        session = self.signing(session_id)
        if session.status != "open":
            return session
        if not confirm:
            with self.lock:
                session.status = "declined"
            return session
        try:
            rec = self.sign_agreement(session.out_agreement_no, session.holder_token, session.limit_fen, notify_url=session.notify_url)
        except SandboxRefusal as exc:
            with self.lock:
                session.status, session.error = "failed", exc.code
            return session
        with self.lock:
            session.status, session.agreement_no = "signed", rec.agreement_no
        return session

    def sign_agreement(self, out_agreement_no: str, holder_token: str, limit_fen: int, *, notify_url: str | None = None) -> AgreementRec:
        """Only the holder's page (`finish_signing`) and the bank's consented enrolment sign an agreement."""
        declined = self.chance(self.knobs.error_rate)
        with self.lock:
            existing = self.agreements.get(out_agreement_no)
            if existing is not None:
                if (existing.holder_token, existing.limit_fen) != (holder_token, limit_fen):
                    raise SandboxRefusal("OUT_AGREEMENT_NO_USED", "the agreement number was used with other parameters")
                return existing
            if declined:
                raise SandboxRefusal("USER_NOT_VERIFIED", "the holder did not pass the institution's checks (error_rate knob)")
            rec = AgreementRec(out_agreement_no, self.new_id("A"), holder_token, limit_fen, "active", self.now())
            self.agreements[out_agreement_no] = rec
        self._emit("agreement", rec, notify_url)
        return rec

    def agreement(self, out_agreement_no: str) -> AgreementRec:
        with self.lock:
            rec = self.agreements.get(out_agreement_no)
        if rec is None:
            raise SandboxRefusal("AGREEMENT_NOT_EXIST", "no such agreement", 404)
        return rec

    def agreement_by_no(self, agreement_no: str) -> AgreementRec | None:
        with self.lock:
            return self.agreements.by_no(agreement_no)

    def terminate_agreement(self, out_agreement_no: str) -> AgreementRec:
        with self.lock:
            rec = self.agreements.get(out_agreement_no)
            if rec is None:
                raise SandboxRefusal("AGREEMENT_NOT_EXIST", "no such agreement", 404)
            if rec.status == "terminated":
                return rec
            rec = self.agreements[out_agreement_no] = replace(rec, status="terminated", at=self.now())
        self._emit("agreement", rec, None)
        return rec

    # -- payments --
    def pay(self, out_trade_no: str, amount_fen: int, description: str, agreement_no: str, notify_url: str | None) -> TradeRec:
        """Collect under a password-free agreement. Same order number, same parameters: the same trade."""
        declined = self.chance(self.knobs.error_rate)
        delay = self.knobs.settle_delay_ms
        with self.lock:
            existing = self.trades.get(out_trade_no)
            if existing is not None:
                if (existing.amount_fen, existing.agreement_no) != (amount_fen, agreement_no):
                    raise SandboxRefusal("OUT_TRADE_NO_USED", "the order number was used with other parameters")
                return existing
            agreement = self.agreements.by_no(agreement_no)
            now = self.now()
            code = None
            if agreement is None or agreement.status != "active":
                code = "AGREEMENT_NOT_ACTIVE"
            elif amount_fen > agreement.limit_fen:
                code = "EXCEEDS_PASSWORD_FREE_LIMIT"
            elif declined:
                code = "NOT_ENOUGH"  # the holder's balance is short (error_rate knob)
            if code:
                rec = TradeRec(out_trade_no, self.new_id("T"), amount_fen, description, agreement_no, "failed", code, now,
                               notify_url=notify_url)
            elif delay:
                rec = TradeRec(out_trade_no, self.new_id("T"), amount_fen, description, agreement_no, "processing", None, now,
                               notify_url=notify_url, settles_at=now + timedelta(milliseconds=delay))
            else:
                rec = TradeRec(out_trade_no, self.new_id("T"), amount_fen, description, agreement_no, "succeeded", None, now,
                               paid_at=now, notify_url=notify_url)
            self.trades[out_trade_no] = rec
        if rec.status != "processing":
            self._emit("payment", rec, notify_url)
        else:
            self.on_delayed()  # the resend loop may be asleep with nothing due: it must settle this one on time
        return rec

    def settle_due(self) -> None:
        """Processing trades whose delay has passed succeed now (and say so)."""
        now = self.now()
        done: list[TradeRec] = []
        with self.lock:
            for no, t in self.trades.open():
                if t.status == "processing" and t.settles_at is not None and t.settles_at <= now:
                    done.append(replace(t, status="succeeded", paid_at=t.settles_at, settles_at=None))
                    self.trades[no] = done[-1]
        for t in done:
            self.settled(t)
            self._emit("payment", t, t.notify_url)

    def settled(self, trade: TradeRec) -> None:
        """Called once for each payment that succeeds after a delay; an institution may book more (the bank: a bill)."""

    def trade(self, out_trade_no: str) -> TradeRec:
        """A trade as a query (or a refund) finds it: not yet while `visible_delay_ms` hides it (measured now, so turning
        the knob down shows it at once)."""
        self.settle_due()
        with self.lock:
            rec = self.trades.get(out_trade_no)
            hidden = rec is not None and self.now() < rec.created_at + timedelta(milliseconds=self.knobs.visible_delay_ms)
        if rec is None or hidden:
            raise SandboxRefusal("ORDER_NOT_EXIST", "no such order", 404)
        return rec

    # -- refunds --
    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int, notify_url: str | None, *, emit: bool = True) -> RefundRec:
        declined = self.chance(self.knobs.error_rate)
        self.settle_due()
        with self.lock:
            existing = self.refunds.get(out_refund_no)
            if existing is not None:
                if (existing.out_trade_no, existing.amount_fen) != (out_trade_no, amount_fen):
                    raise SandboxRefusal("OUT_REFUND_NO_USED", "the refund number was used with other parameters")
                return existing
            trade = self.trades.get(out_trade_no)
            if trade is None:
                raise SandboxRefusal("ORDER_NOT_EXIST", "no such order", 404)
            if trade.status != "succeeded":
                raise SandboxRefusal("TRADE_NOT_PAID", "the order is not paid")
            if amount_fen > trade.amount_fen - trade.refunded_fen:
                raise SandboxRefusal("REFUND_AMOUNT_EXCEEDS", "the refund exceeds what is left of the payment")
            now = self.now()
            if declined:
                # A declined refund is still booked, as failed: query then tells the same story.
                rec = RefundRec(out_trade_no, out_refund_no, self.new_id("R"), trade.trade_no, amount_fen, "failed",
                                "REFUND_DECLINED", now, notify_url)
            else:
                rec = RefundRec(out_trade_no, out_refund_no, self.new_id("R"), trade.trade_no, amount_fen, "succeeded", None, now,
                                notify_url)
                self.trades[out_trade_no] = replace(trade, refunded_fen=trade.refunded_fen + amount_fen)
            self.refunds[out_refund_no] = rec
        if emit:
            self._emit("refund", rec, notify_url)
        return rec

    def refund_of(self, out_refund_no: str) -> RefundRec:
        with self.lock:
            rec = self.refunds.get(out_refund_no)
        if rec is None:
            raise SandboxRefusal("REFUND_NOT_EXIST", "no such refund", 404)
        return rec

    # -- statements --
    def statement(self, day: date) -> tuple[list[TradeRec], list[RefundRec]]:
        """The day's succeeded trades and refunds (Beijing days), in time order."""
        self.settle_due()
        with self.lock:
            trades = [t for t in self.trades.values() if t.status == "succeeded" and t.paid_at and china_time(t.paid_at).date() == day]
            refunds = [r for r in self.refunds.values() if r.status == "succeeded" and china_time(r.at).date() == day]
            faults = self.faults
        trades = sorted(trades, key=lambda t: (t.paid_at, t.trade_no))
        refunds = sorted(refunds, key=lambda r: (r.at, r.refund_id))
        return _faulty(trades, "out_trade_no", faults), _faulty(refunds, "out_refund_no", faults)

    def merchant_refund(self, out_trade_no: str, amount_fen: int) -> RefundRec:
        """A refund made at the institution without the platform asking (its merchant portal): booked, told to nobody."""
        return self.refund(out_trade_no, self.new_id("M"), amount_fen, None, emit=False)

    def reset(self) -> None:
        with self.lock:
            self.knobs = Knobs(seed=self.knobs.seed)
            self.clock_offset = timedelta(0)
            self.faults = StatementFaults()


def _faulty(records: list[Any], key: str, faults: StatementFaults) -> list[Any]:
    out = []
    for rec in records:
        no = getattr(rec, key)
        if no in faults.drop:
            continue
        if no in faults.alter:
            rec = replace(rec, amount_fen=faults.alter[no])
        out.append(rec)
        if no in faults.duplicate:
            out.append(rec)
    return out


@dataclass
class SandboxInfo:
    """What a sandbox tells the world about itself (GET /sandbox/info): it is a sandbox."""

    name: str
    title: str
    scheme: str
    extra: dict[str, Any] = field(default_factory=dict)
