"""The `Channel` protocol: what the platform asks of a payment institution (移动支付机构), one method per flow.

Shaped like hyperswitch's connectors: a connector module does I/O (signed HTTP through
`httpx.AsyncClient`), and a transformers module beside it turns these plain values into the
institution's wire format and back without any I/O.

Seed 002 (基金安全): pooled-fund money is settled only between the agency and the hospital; it never
enters a payment institution. So no request type here has a field for a fund share, an account
share, an ID number or a name: a connector cannot be asked to send one. The institution sees the
patient's cash share, our order number, a description, and an opaque holder token.

Money is integer fen here; the transformers turn it into yuan strings (or fen strings) at the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Mapping, NamedTuple, Protocol, runtime_checkable

from yibao.domain.errors import YibaoError

PaymentStatus = Literal["succeeded", "processing", "failed"]
RefundStatus = Literal["succeeded", "processing", "failed"]
AgreementStatus = Literal["active", "terminated"]
NotificationKind = Literal["payment", "refund", "agreement", "credit"]

# Our order numbers: what every institution accepts (WeChat: 6–32 of [A-Za-z0-9_-|*]; Alipay: ≤64; UnionPay: 8–32 [A-Za-z0-9]).
_OUT_NO = re.compile(r"^[A-Za-z0-9]{8,32}$")
# A holder token is opaque: URL-safe base64 of a keyed hash, never something a person could be named by.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_LOOKS_LIKE_ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
MAX_AMOUNT_FEN = 10**12  # ten billion yuan: far above any bill, far below every wire format's limit
MAX_DESCRIPTION = 64


# ---- errors ------------------------------------------------------------------------------------

class ChannelError(YibaoError):
    """Something a payment institution (or talking to it) went wrong with."""

    def __init__(self, channel: str, code: str, message_zh: str, message_en: str) -> None:
        self.channel = channel
        super().__init__("payment_institution", code, message_zh, message_en)


class Declined(ChannelError):
    """A definite refusal: the institution answered, signed, that this did not and will not happen.

    Nothing was collected (or refunded); the order number may be treated as failed.
    """


class OutcomeUnknown(ChannelError):
    """No trustworthy answer (timeout, connection lost, 5xx, garbled): the money may or may not have
    moved. The caller must ask `query` (or `query_refund`) — never assume either way."""


class AcceptedUnknown(OutcomeUnknown):
    """The institution accepted the request, signed (WeChat's 204, UnionPay's 00 or 12), and what became of it is not
    known yet: asking for it right after found nothing, or gave no answer. An accepted order may take a while to be
    visible to the institution's query; until long after, its "not found" does not mean "never seen"."""


class BadSignature(OutcomeUnknown):
    """A response or notification whose signature is missing or wrong: not from the institution, or
    altered. For a notification it is a refusal (answer non-2xx, query instead); for a response to a
    call the outcome is unknown, hence the base class."""


class NotFoundAtChannel(ChannelError):
    """The institution, answering signed, does not know this order, refund or agreement."""


class StatementError(ChannelError):
    """A statement file that does not parse, or whose summary line disagrees with its rows."""


def declined(channel: str, code: str, message: str) -> Declined:
    return Declined(channel, code, f"支付机构拒绝：{code}", f"{channel} declined: {code} {message}".strip())


def unknown(channel: str, code: str, message_en: str) -> OutcomeUnknown:
    return OutcomeUnknown(channel, code, "支付机构未给出可信结果，须查询确认", f"{channel}: no trustworthy answer ({message_en}); query to learn the outcome")


def accepted_unknown(channel: str, code: str, message_en: str) -> AcceptedUnknown:
    return AcceptedUnknown(channel, code, "支付机构已受理，结果未知，须查询确认",
                           f"{channel}: accepted, the outcome not known yet ({message_en}); query to learn it")


def bad_signature(channel: str, what_en: str) -> BadSignature:
    return BadSignature(channel, "bad_signature", "签名验证失败，不予采信", f"{channel}: {what_en} failed signature verification")


def not_found_at(channel: str, what_en: str) -> NotFoundAtChannel:
    return NotFoundAtChannel(channel, "not_found_at_channel", "支付机构无此记录", f"{channel} has no record of {what_en}")


# ---- requests ----------------------------------------------------------------------------------

def _check_out_no(value: str, name: str) -> None:
    if not isinstance(value, str) or not _OUT_NO.match(value):
        raise ValueError(f"{name} must be 8–32 letters or digits, got {value!r}")


def _check_amount(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT_FEN:
        raise ValueError(f"{name} must be a positive integer of fen, got {value!r}")


def check_holder_token(token: str) -> None:
    """Refuse anything that is not an opaque token, above all an ID number or a name in clear."""
    if not isinstance(token, str) or not _TOKEN.match(token) or _LOOKS_LIKE_ID_NUMBER.search(token):
        raise ValueError("holder_token must be an opaque token (16–64 of [A-Za-z0-9_-]), never an ID number or a name")


@dataclass(frozen=True)
class AgreementRequest:
    """Password-free signing (免密签约) for one holder's binding.

    ``return_url``: where the institution's signing page sends the holder back to; ``notify_url``: where it sends the
    signed result (None: the connector's configured notify URL); ``display_name``: what the page shows as the
    holder's account at the merchant (never an ID number or a name in clear)."""

    out_agreement_no: str
    holder_token: str
    limit_fen: int  # the password-free limit per payment agreed with the holder
    return_url: str | None = None
    notify_url: str | None = None
    display_name: str = "免密支付用户"
    sent_at: datetime | None = None  # when the platform started it: UnionPay names the opening by orderId + this txnTime

    def __post_init__(self) -> None:
        _check_out_no(self.out_agreement_no, "out_agreement_no")
        check_holder_token(self.holder_token)
        if isinstance(self.limit_fen, bool) or not isinstance(self.limit_fen, int) or not 0 <= self.limit_fen <= MAX_AMOUNT_FEN:
            raise ValueError("limit_fen must be a non-negative integer of fen")


@dataclass(frozen=True)
class PaymentRequest:
    """Collect the patient's cash share. There is deliberately no field for any fund share."""

    out_trade_no: str
    amount_fen: int
    description: str
    agreement_no: str  # the institution's agreement number for the holder (signed on its page: `start_signing`, then notified or queried)
    # When the platform recorded the order: an institution that names an order by number *and* time (UnionPay's
    # txnTime) sends this one, so a resend is the same order and a later query can name it. None: the connector's clock.
    sent_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_out_no(self.out_trade_no, "out_trade_no")
        _check_amount(self.amount_fen, "amount_fen")
        if not isinstance(self.description, str) or not 0 < len(self.description) <= MAX_DESCRIPTION:
            raise ValueError(f"description must be 1–{MAX_DESCRIPTION} characters")
        if _LOOKS_LIKE_ID_NUMBER.search(self.description):
            raise ValueError("description must not carry an ID number")
        if any(ord(c) < 0x20 or c == "\x7f" for c in self.description):
            raise ValueError("description must be one line without control characters")
        if not isinstance(self.agreement_no, str) or not 0 < len(self.agreement_no) <= 64:
            raise ValueError("agreement_no must be 1–64 characters")


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    paid_fen: int  # the original payment's amount (WeChat wants it; every connector checks amount ≤ paid)
    reason: str = ""
    # For institutions that name orders by number and time (UnionPay): when the refund and its payment were recorded,
    # and the institution's id of the trade (UnionPay's origQryId). None: the connector finds out or uses its clock.
    sent_at: datetime | None = None
    trade_no: str | None = None
    trade_sent_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_out_no(self.out_trade_no, "out_trade_no")
        _check_out_no(self.out_refund_no, "out_refund_no")
        _check_amount(self.amount_fen, "amount_fen")
        _check_amount(self.paid_fen, "paid_fen")
        if self.amount_fen > self.paid_fen:
            raise ValueError("a refund cannot exceed the amount paid")
        if len(self.reason) > 80:
            raise ValueError("reason must be at most 80 characters")


# ---- results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Agreement:
    out_agreement_no: str
    agreement_no: str
    status: AgreementStatus
    limit_fen: int


@dataclass(frozen=True)
class SigningStart:
    """What the holder opens to sign on the institution's own page: ``url`` by ``method`` (GET: a redirect or a QR of
    it; POST: an auto-submitted form of ``form``'s fields, UnionPay's front-end transaction). Nothing is signed yet:
    the result comes by the institution's signed notification and by `query_agreement`."""

    out_agreement_no: str
    url: str
    method: Literal["GET", "POST"] = "GET"
    form: Mapping[str, str] = field(default_factory=dict)
    session_id: str | None = None  # the institution's id of the signing session (WeChat's pre_entrustweb_id)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PaymentResult:
    out_trade_no: str
    trade_no: str | None  # the institution's id for the trade
    status: PaymentStatus
    amount_fen: int
    refunded_fen: int = 0
    error_code: str | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RefundResult:
    out_trade_no: str
    out_refund_no: str
    refund_id: str | None
    status: RefundStatus
    amount_fen: int
    error_code: str | None = None


@dataclass(frozen=True)
class Notification:
    """A verified, parsed asynchronous notification. Only `verify_notification` makes one."""

    channel: str
    kind: NotificationKind
    event_id: str  # the institution's id of this event (repeated on a resend)
    status: str  # payment/refund: succeeded|failed; agreement: active|terminated; credit: a bill or line event
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    trade_no: str | None = None
    amount_fen: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # the remaining verified fields, as strings
    event_at: datetime | None = None  # when the institution says the event happened (a payment's paid time), if it says

    @property
    def dedup_key(self) -> tuple[str, ...]:
        """Business identity of the event: the same trade reaching the same state is one event,
        however many times (and under whatever notify ids) the institution sends it."""
        subject = self.out_refund_no or self.out_trade_no or self.data.get("subject") or self.event_id
        return (self.channel, self.kind, subject, self.status)


@dataclass(frozen=True)
class Ack:
    """What to answer a notification with, in the institution's own words."""

    status_code: int
    body: bytes
    media_type: str


class StatementRow(NamedTuple):  # a named tuple: a day's statement may hold a million rows, and a tuple is made fast
    kind: Literal["trade", "refund"]
    out_trade_no: str
    trade_no: str
    amount_fen: int
    at: datetime
    out_refund_no: str | None = None
    refund_id: str | None = None


@dataclass(frozen=True)
class Statement:
    channel: str
    day: date
    rows: tuple[StatementRow, ...]
    trade_count: int
    trade_total_fen: int
    refund_count: int
    refund_total_fen: int


def check_statement_totals(st: Statement) -> Statement:
    """A statement whose summary disagrees with its own rows is refused, not half-trusted."""
    trades = [r for r in st.rows if r.kind == "trade"]
    refunds = [r for r in st.rows if r.kind == "refund"]
    if (len(trades), sum(r.amount_fen for r in trades), len(refunds), sum(r.amount_fen for r in refunds)) != (
            st.trade_count, st.trade_total_fen, st.refund_count, st.refund_total_fen):
        raise StatementError(st.channel, "statement_totals_mismatch", "对账单汇总行与明细不符",
                             f"{st.channel}: the statement's summary line disagrees with its rows")
    return st


def sent_at_kw(channel: object, at: datetime | None) -> dict[str, datetime]:
    """The keyword for `query`/`query_refund` of a connector that names an order by number and send time
    (``names_orders_by_time``, UnionPay's orderId + txnTime): the time the platform recorded it. Others take none."""
    return {"sent_at": at} if at is not None and getattr(channel, "names_orders_by_time", False) else {}


# ---- the protocol ------------------------------------------------------------------------------

@runtime_checkable
class Channel(Protocol):
    """One admitted payment institution. Every call is async and made outside any database unit of work."""

    name: str

    async def start_signing(self, req: AgreementRequest) -> SigningStart:
        """Open the holder's signing on the institution's page; the result arrives by notification and `query_agreement`."""
        ...

    async def query_agreement(self, out_agreement_no: str) -> Agreement: ...

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement: ...

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        """succeeded or processing; `Declined` for a definite failure; `OutcomeUnknown` → call `query`."""
        ...

    async def query(self, out_trade_no: str) -> PaymentResult:
        """The institution's truth about an order; `NotFoundAtChannel` if it never saw it."""
        ...

    async def refund(self, req: RefundRequest) -> RefundResult: ...

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult: ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and parse a raw notification; `BadSignature` (or `StatementError`-free `ChannelError`) refuses it."""
        ...

    def ack(self, accepted: bool) -> Ack:
        """The answer the institution expects: accepted stops its resending, refused asks for a resend."""
        ...

    async def statement(self, day: date) -> Statement: ...


# ---- medical-insurance orders (医保支付: the wallet collects the self-pay part, the platform settles the insurance part) --

MixPayStatus = Literal["MIX_PAY_CREATED", "MIX_PAY_SUCCESS", "MIX_PAY_REFUND", "MIX_PAY_FAIL"]


@dataclass(frozen=True)
class MedInsOrder:
    """A wallet's mixed order (WeChat Pay `GET /v3/med-ins/orders/mix-trade-no/{id}`), as far as the platform reads it."""

    mix_trade_no: str
    pay_order_id: str
    mix_pay_status: str
    self_pay_status: str  # SELF_PAY_CREATED | SELF_PAY_SUCCESS | SELF_PAY_REFUND | SELF_PAY_FAIL | NO_SELF_PAY
    med_ins_pay_status: str  # MED_INS_PAY_CREATED | MED_INS_PAY_SUCCESS | MED_INS_PAY_REFUND | MED_INS_PAY_FAIL | NO_MED_INS_PAY
    cash_fen: int  # med_ins_cash_fee: the self-pay part of the insurance settlement the wallet collected


@dataclass(frozen=True)
class WalletRequest:
    """A verified request a wallet sent the platform about a medical-insurance order, in the platform's terms: its fields
    under the names the platform uses for mixed orders (WeChat Pay's — `med_ins_gov_fee`, `mix_trade_no`, … — as
    `MedInsOrder`'s states are WeChat's), amounts in integer fen, states in WeChat's vocabulary. A value that does not
    read (an amount that is no amount) stays as sent, so the platform refuses it naming the field. ``values`` None: the
    body is not an object. ``names``: the wallet's own name of each field, so every refusal names what the wallet sent."""

    nonce: str  # once per request: claimed by the platform (WeChat: the Wechatpay-Nonce header; Alipay: notify_id)
    values: Mapping[str, object] | None
    names: Mapping[str, str] = field(default_factory=dict)
    nonce_field: str = "nonce"

    def name(self, key: str) -> str:
        return self.names.get(key, key)


class MedInsWallet(Protocol):
    """What a wallet that carries medical-insurance orders offers the platform besides `Channel` (WeChat Pay, Alipay)."""

    wallet_signature_field: str  # the field a bad signature is refused by (WeChat: Wechatpay-Signature; Alipay: sign)

    def open_wallet_request(self, action: str, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WalletRequest:
        """A request the wallet sent the platform (it acts for the holder, or reports its mixed order) for ``action``:
        signed by the wallet's own key — the one that verifies its answers and notifications — or BadSignature."""
        ...

    def wallet_answer(self, payload: Mapping[str, object]) -> dict[str, object]:
        """The platform's answer (its names, fen) in the wallet's terms."""
        ...

    async def query_med_ins_order(self, mix_trade_no: str) -> MedInsOrder:
        """The wallet's truth about a mixed order (NotFoundAtChannel: it has none)."""
        ...
