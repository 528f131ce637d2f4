"""SANDBOX bank: a bank offering credit lines for medical bills (信用支付) as a real HTTP service. Not a bank.

"医院看病，回家付钱": with the holder's consent the bank scores them and grants a line; the cash
share of a bill is reserved on the line and paid to the hospital by the bank; each payment becomes
a bill due `bill_days` later; the holder (or a family member) repays; a bill past its due date is
overdue and suspends the line until it is repaid. Scores are a deterministic function of the
holder token (600–899); the `credit_min_score` of the config refuses below it.

Signature: HMAC-SHA256 under the shared secret over direction-labelled strings (see
yibao.channels.bank.transformers). JSON bodies, amounts as yuan strings.

    yibao sandbox bank --port 8714 --callback http://127.0.0.1:8000/api/v1/channels/bank/notify
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.crypto import hmac_equal, hmac_sha256_hex
from yibao.channels.wire import WireError, china_time, fen_to_yuan, rfc3339, yuan_to_fen
from yibao.sandbox.channels import admin
from yibao.sandbox.channels.core import AgreementRec, Books, Event, IndexedDict, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "HMAC-SHA256 (shared secret) over direction-labelled strings"
TITLE = "yibao SANDBOX bank (credit lines for medical bills; not a real bank)"


@dataclass
class BankSandboxConfig:
    secret: bytes = field(repr=False)
    merchant_id: str
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None
    bill_days: int = 30  # a bill is due this many days after the bank paid the hospital
    credit_min_score: int = 600
    consent_versions: tuple[str, ...] = ("credit-terms-v1",)


@dataclass(frozen=True)
class Line:
    agreement_no: str
    score: int
    limit_fen: int


@dataclass(frozen=True)
class Bill:
    bill_no: str
    out_trade_no: str
    agreement_no: str
    due_date: date
    repaid_fen: int = 0
    overdue_told: bool = False

    @property
    def subject(self) -> str:
        return self.bill_no


def score_of(holder_token: str) -> int:
    return 600 + int.from_bytes(hashlib.sha256(holder_token.encode()).digest()[:4], "big") % 300


def limit_for(score: int) -> int:
    return 5000_00 if score >= 800 else 3000_00 if score >= 700 else 1000_00


@dataclass(frozen=True)
class PayoutRec:
    """A payment instruction from the agency (monthly clearing, benefits onto the card): accepted when booked, confirmed
    once the bank has paid (``settle_delay_ms`` after acceptance, seen on the next query), or failed at once
    (INVALID_PAYEE_ACCOUNT); a credit to an account the bank has closed is accepted, then RETURNED (ACCOUNT_CLOSED) when
    it would have been paid, as a bank's returned credit (退票) comes back after the batch was taken."""

    out_instruction_no: str
    bank_ref: str
    payee_account: str
    payee_name: str
    amount_fen: int
    purpose: str
    status: str  # ACCEPTED | CONFIRMED | FAILED | RETURNED
    accepted_at: datetime
    confirm_at: datetime
    error_code: str | None = None
    confirmed_at: datetime | None = None


def valid_account(number: str) -> bool:
    """SANDBOX rule: a payee account is 12–19 digits passing the Luhn check (as bank card numbers do)."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


class Bills(IndexedDict):
    """bill_no → bill, indexed by line (agreement_no) and by whether its going overdue is still untold."""

    def __init__(self) -> None:
        super().__init__()
        self._by_agreement: dict[str, dict[str, None]] = {}
        self._untold: dict[str, None] = {}

    def _index(self, key: str, b: Bill) -> None:
        self._add(self._by_agreement, b.agreement_no, key)
        if not b.overdue_told:
            self._untold[key] = None

    def _unindex(self, key: str, b: Bill) -> None:
        self._drop(self._by_agreement, b.agreement_no, key)
        self._untold.pop(key, None)

    def _in_order(self, keys: Any) -> list[Bill]:
        return [dict.__getitem__(self, key) for key in sorted(keys, key=self._seq.__getitem__)]

    def of_line(self, agreement_no: str) -> list[Bill]:
        """The line's bills, in the dict's order."""
        return self._in_order(self._by_agreement.get(agreement_no, ()))

    def untold(self, where: Callable[[Bill], bool]) -> list[tuple[str, Bill]]:
        """The bills ``where`` picks among those whose going overdue has not been told, in the dict's order."""
        keys = [key for key in self._untold if where(dict.__getitem__(self, key))]
        return [(key, dict.__getitem__(self, key)) for key in sorted(keys, key=self._seq.__getitem__)]


class CreditBooks(Books):
    """The shared books plus lines, reservations (processing trades), bills and repayments."""

    def __init__(self, config: BankSandboxConfig, clock: Any = None) -> None:
        super().__init__("BK", seed=config.seed, clock=clock)
        self.config = config
        self.lines: dict[str, Line] = {}
        self.bills = Bills()
        self.repayments: dict[str, tuple[str, int, str]] = {}  # out_repayment_no → (bill_no, amount, payer)
        self.payouts: dict[str, PayoutRec] = {}  # out_instruction_no → the instruction
        self.closed_accounts: set[str] = set()  # accounts the bank has closed: credits to them are returned

    def today(self) -> date:
        return china_time(self.now()).date()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.closed_accounts.clear()

    def enrol(self, out_agreement_no: str, holder_token: str, single_limit: int) -> AgreementRec:
        score = score_of(holder_token)
        if score < self.config.credit_min_score and out_agreement_no not in self.agreements:
            raise SandboxRefusal("CREDIT_REFUSED", f"score {score} is below {self.config.credit_min_score}")
        rec = self.sign_agreement(out_agreement_no, holder_token, single_limit)
        with self.lock:
            self.lines.setdefault(rec.agreement_no, Line(rec.agreement_no, score, limit_for(score)))
        return rec

    def restore(self, line: Line, *, out_agreement_no: str, holder_token: str, single_limit: int,
                bills: list[tuple[Bill, int, datetime]]) -> None:
        """SANDBOX only, for the demo's start-up: books made afresh are given back a line and its bills
        (each with its amount and when the bank paid) that the platform recorded with an earlier process's
        sandbox — as a real bank would still hold them. Nothing is notified; a line already here stays."""
        with self.lock:
            if out_agreement_no in self.agreements:
                return
            self.agreements[out_agreement_no] = AgreementRec(out_agreement_no, line.agreement_no, holder_token, single_limit, "active",
                                                             self.now())
            self.lines[line.agreement_no] = line
            for bill, amount_fen, paid_at in bills:
                self.trades[bill.out_trade_no] = TradeRec(bill.out_trade_no, self.new_id("T"), amount_fen, "restored", line.agreement_no,
                                                          "succeeded", None, paid_at, paid_at=paid_at)
                self.bills[bill.bill_no] = bill

    # -- derived amounts, under the lock --
    def _outstanding(self, b: Bill) -> int:
        t = self.trades[b.out_trade_no]
        return max(0, t.amount_fen - t.refunded_fen - b.repaid_fen)

    def _bill_status(self, b: Bill) -> str:
        if self._outstanding(b) == 0:
            return "repaid"
        return "overdue" if self.today() > b.due_date else "open"

    def _used(self, agreement_no: str) -> int:
        reserved = sum(t.amount_fen for _, t in self.trades.open() if t.agreement_no == agreement_no and t.status == "processing")
        return reserved + sum(self._outstanding(b) for b in self.bills.of_line(agreement_no))

    def _line_status(self, agreement: AgreementRec) -> str:
        if agreement.status != "active":
            return "CLOSED"
        overdue = any(self._bill_status(b) == "overdue" for b in self.bills.of_line(agreement.agreement_no))
        return "SUSPENDED" if overdue else "ACTIVE"

    def sweep_overdue(self) -> None:
        """Tell the platform once about each bill that has gone overdue."""
        told: list[Bill] = []
        with self.lock:
            today = self.today()  # once: this runs before every request
            # _bill_status(b) == "overdue", the date (cheapest) first
            for no, b in self.bills.untold(lambda b: today > b.due_date and self._outstanding(b) > 0):
                self.bills[no] = replace(b, overdue_told=True)
                told.append(self.bills[no])
        for b in told:
            self._emit("credit", ("overdue", b), None)

    # -- payments on the line --
    def reserve(self, out_trade_no: str, agreement_no: str, amount_fen: int, description: str) -> TradeRec:
        declined = self.chance(self.knobs.error_rate)
        with self.lock:
            existing = self.trades.get(out_trade_no)
            if existing is not None:
                if (existing.amount_fen, existing.agreement_no) != (amount_fen, agreement_no):
                    raise SandboxRefusal("OUT_TRADE_NO_USED", "the order number was used with other parameters")
                return existing
            agreement = self.agreements.by_no(agreement_no)
            line = self.lines.get(agreement_no)
            code = None
            if agreement is None or line is None or agreement.status != "active":
                code = "AGREEMENT_NOT_ACTIVE"
            elif self._line_status(agreement) == "SUSPENDED":
                code = "LINE_SUSPENDED_OVERDUE"
            elif amount_fen > agreement.limit_fen:
                code = "EXCEEDS_PASSWORD_FREE_LIMIT"
            elif amount_fen > line.limit_fen - self._used(agreement_no):
                code = "CREDIT_LIMIT_EXCEEDED"
            elif declined:
                code = "RISK_DECLINED"  # the bank's risk control said no (error_rate knob)
            now = self.now()
            rec = TradeRec(out_trade_no, self.new_id("T"), amount_fen, description, agreement_no, "failed" if code else "processing", code, now)
            self.trades[out_trade_no] = rec
        if code:
            self._emit("payment", rec, None)
        return rec

    def capture(self, out_trade_no: str) -> TradeRec:
        """The bank pays the hospital from the line; the holder now owes a bill."""
        with self.lock:
            t = self.trades.get(out_trade_no)
            if t is None:
                raise SandboxRefusal("ORDER_NOT_EXIST", "no such reservation", 404)
            if t.status != "processing":
                if t.status == "succeeded":
                    return t
                raise SandboxRefusal("RESERVATION_RELEASED", "the reservation was released or failed")
            t = self.trades[out_trade_no] = replace(t, status="succeeded", paid_at=self.now(), settles_at=None)
            self._book_bill(t)
        self._emit("payment", t, None)
        return t

    def _book_bill(self, t: TradeRec) -> None:
        bill_no = self.new_id("B")
        self.bills[bill_no] = Bill(bill_no, t.out_trade_no, t.agreement_no, china_time(t.paid_at).date() + timedelta(days=self.config.bill_days))  # type: ignore[arg-type]

    def settled(self, trade: TradeRec) -> None:
        with self.lock:
            self._book_bill(trade)

    def release(self, out_trade_no: str) -> TradeRec:
        with self.lock:
            t = self.trades.get(out_trade_no)
            if t is None:
                raise SandboxRefusal("ORDER_NOT_EXIST", "no such reservation", 404)
            if t.status == "succeeded":
                raise SandboxRefusal("ALREADY_CAPTURED", "the bank has paid the hospital; refund instead")
            if t.status == "processing":
                t = self.trades[out_trade_no] = replace(t, status="failed", error_code="RELEASED", settles_at=None)
        return t

    def pay_now(self, out_trade_no: str, agreement_no: str, amount_fen: int, description: str) -> TradeRec:
        t = self.reserve(out_trade_no, agreement_no, amount_fen, description)
        if t.status != "processing" or t.paid_at is not None:
            return t
        delay = self.knobs.settle_delay_ms
        if delay:  # the bank pays the hospital a little later; settle_due captures it then
            with self.lock:
                t = self.trades[out_trade_no] = replace(t, settles_at=self.now() + timedelta(milliseconds=delay))
            return t
        return self.capture(out_trade_no)

    def repay(self, bill_no: str, out_repayment_no: str, amount_fen: int, payer: str) -> Bill:
        with self.lock:
            b = self.bills.get(bill_no)
            if b is None:
                raise SandboxRefusal("BILL_NOT_EXIST", "no such bill", 404)
            done = self.repayments.get(out_repayment_no)
            if done is not None:
                if done != (bill_no, amount_fen, payer):
                    raise SandboxRefusal("OUT_REPAYMENT_NO_USED", "the repayment number was used with other parameters")
                return b
            if amount_fen > self._outstanding(b):
                raise SandboxRefusal("REPAYMENT_EXCEEDS_OUTSTANDING", "the repayment exceeds what is owed")
            b = self.bills[bill_no] = replace(b, repaid_fen=b.repaid_fen + amount_fen)
            self.repayments[out_repayment_no] = (bill_no, amount_fen, payer)
            paid_off = self._outstanding(b) == 0
        if paid_off:
            self._emit("credit", ("repaid", b), None)
        return b

    # -- payment instructions (the agency's clearing payouts) --
    def payout(self, out_instruction_no: str, payee_account: str, payee_name: str, amount_fen: int, purpose: str) -> PayoutRec:
        with self.lock:
            existing = self.payouts.get(out_instruction_no)
            if existing is not None:
                if (existing.payee_account, existing.amount_fen) != (payee_account, amount_fen):
                    raise SandboxRefusal("OUT_INSTRUCTION_NO_USED", "the instruction number was used with other parameters")
                return existing  # booked once: a resend answers the first booking
            now = self.now()
            ok = valid_account(payee_account)
            rec = PayoutRec(out_instruction_no, self.new_id("P"), payee_account, payee_name, amount_fen, purpose,
                            "ACCEPTED" if ok else "FAILED", now, now + timedelta(milliseconds=self.knobs.settle_delay_ms),
                            None if ok else "INVALID_PAYEE_ACCOUNT")
            self.payouts[out_instruction_no] = rec
            return rec

    def payout_of(self, out_instruction_no: str) -> PayoutRec:
        with self.lock:
            rec = self.payouts.get(out_instruction_no)
            if rec is None:
                raise SandboxRefusal("INSTRUCTION_NOT_EXIST", "no such instruction", 404)
            if rec.status == "ACCEPTED" and self.now() >= rec.confirm_at:
                if rec.payee_account in self.closed_accounts:
                    rec = self.payouts[out_instruction_no] = replace(rec, status="RETURNED", error_code="ACCOUNT_CLOSED", confirmed_at=self.now())
                else:
                    rec = self.payouts[out_instruction_no] = replace(rec, status="CONFIRMED", confirmed_at=self.now())
            return rec

    # -- views --
    def bill_view(self, b: Bill) -> dict[str, Any]:
        with self.lock:
            t = self.trades[b.out_trade_no]
            return {"bill_no": b.bill_no, "out_trade_no": b.out_trade_no, "agreement_no": b.agreement_no, "amount": fen_to_yuan(t.amount_fen),
                    "refunded": fen_to_yuan(t.refunded_fen), "repaid": fen_to_yuan(b.repaid_fen), "outstanding": fen_to_yuan(self._outstanding(b)),
                    "due_date": b.due_date.isoformat(), "status": self._bill_status(b)}

    def line_view(self, a: AgreementRec) -> dict[str, Any]:
        with self.lock:
            line = self.lines[a.agreement_no]
            used = self._used(a.agreement_no)
            status = self._line_status(a)
            bills = self.bills.of_line(a.agreement_no)
        views = [self.bill_view(b) for b in bills]
        return {"out_agreement_no": a.out_agreement_no, "agreement_no": a.agreement_no, "status": status, "score": line.score,
                "credit_limit": fen_to_yuan(line.limit_fen), "used": fen_to_yuan(used), "available": fen_to_yuan(max(0, line.limit_fen - used)),
                "single_limit": fen_to_yuan(a.limit_fen), "overdue": any(v["status"] == "overdue" for v in views), "bills": views}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Consent(_Strict):
    version: str = Field(min_length=1, max_length=40)
    accepted_at: str


class EnrolIn(_Strict):
    out_agreement_no: str = Field(min_length=1, max_length=32)
    holder_token: str = Field(min_length=16, max_length=64)
    single_limit: str
    consent: Consent


class PaymentIn(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=32)
    agreement_no: str = Field(min_length=1, max_length=64)
    amount: str
    description: str = Field(min_length=1, max_length=128)


class RefundIn(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=32)
    out_refund_no: str = Field(min_length=1, max_length=32)
    amount: str
    reason: str = Field("", max_length=80)


class RepayIn(_Strict):
    out_repayment_no: str = Field(min_length=1, max_length=32)
    amount: str
    payer_token: str = Field(min_length=16, max_length=64)


class PayoutIn(_Strict):
    out_instruction_no: str = Field(min_length=1, max_length=40)
    payee_account: str = Field(min_length=1, max_length=32)
    payee_name: str = Field(min_length=1, max_length=200)
    amount: str
    purpose: str = Field(min_length=1, max_length=128)


class Empty(_Strict):
    pass


class AccountIn(_Strict):
    account: str = Field(min_length=12, max_length=19, pattern=r"^[0-9]+$")


def yuan(text: str, field_name: str) -> int:
    try:
        fen = yuan_to_fen(text)
    except WireError:
        raise SandboxRefusal("INVALID_AMOUNT", f"{field_name} must be yuan with two decimals") from None
    if fen <= 0:
        raise SandboxRefusal("INVALID_AMOUNT", f"{field_name} must be positive")
    return fen


def payment_view(t: TradeRec) -> dict[str, Any]:
    status = {"succeeded": "PAID", "processing": "RESERVED", "failed": "RELEASED" if t.error_code == "RELEASED" else "FAILED"}[t.status]
    view: dict[str, Any] = {"out_trade_no": t.out_trade_no, "bank_ref": t.trade_no, "agreement_no": t.agreement_no, "status": status,
                            "amount": fen_to_yuan(t.amount_fen), "refunded": fen_to_yuan(t.refunded_fen)}
    if t.paid_at:
        view["paid_at"] = rfc3339(t.paid_at)
    if t.error_code:
        view["error_code"] = t.error_code
    return view


def refund_view(r: RefundRec) -> dict[str, Any]:
    return {"out_trade_no": r.out_trade_no, "out_refund_no": r.out_refund_no, "bank_ref": r.refund_id, "amount": fen_to_yuan(r.amount_fen),
            "status": "SUCCEEDED" if r.status == "succeeded" else "FAILED", **({"error_code": r.error_code} if r.error_code else {})}


def payout_view(p: PayoutRec) -> dict[str, Any]:
    view: dict[str, Any] = {"out_instruction_no": p.out_instruction_no, "bank_ref": p.bank_ref, "status": p.status,
                            "amount": fen_to_yuan(p.amount_fen), "payee_account": p.payee_account, "accepted_at": rfc3339(p.accepted_at)}
    if p.confirmed_at:
        view["confirmed_at"] = rfc3339(p.confirmed_at)
    if p.error_code:
        view["error_code"] = p.error_code
    return view


def render_statement(day: date, trades: list[TradeRec], refunds: list[RefundRec]) -> str:
    lines = [f"# SANDBOX BANK credit-payment statement {day.isoformat()}", "kind,out_trade_no,bank_ref,out_refund_no,amount_yuan,at"]
    rows = [(t.paid_at, f"PAY,{t.out_trade_no},{t.trade_no},,{fen_to_yuan(t.amount_fen)},{rfc3339(t.paid_at)}") for t in trades]  # type: ignore[arg-type]
    rows += [(r.at, f"REFUND,{r.out_trade_no},{r.refund_id},{r.out_refund_no},{fen_to_yuan(r.amount_fen)},{rfc3339(r.at)}") for r in refunds]
    lines += [text for _, text in sorted(rows, key=lambda x: x[0])]
    lines.append(f"SUMMARY,{len(trades)},{fen_to_yuan(sum(t.amount_fen for t in trades))},{len(refunds)},"
                 f"{fen_to_yuan(sum(r.amount_fen for r in refunds))}")
    return "\n".join(lines) + "\n"


def create_app(config: BankSandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Nothing here lends or moves money.")
    books = CreditBooks(config, clock)

    def answer(payload: dict[str, Any], request_nonce: str, status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        ts, nonce = str(int(books.wall().timestamp())), secrets.token_hex(16)
        sig = hmac_sha256_hex(config.secret, f"answer\n{ts}\n{nonce}\n{request_nonce}\n{hashlib.sha256(body).hexdigest()}".encode())
        return Response(body, status_code=status, media_type="application/json",
                        headers={"X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce, "X-Bank-Signature": sig})

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        if event.kind == "payment":
            name, data = f"payment.{rec.status}", payment_view(rec)
        elif event.kind == "refund":
            name, data = f"refund.{rec.status}", refund_view(rec)
        elif event.kind == "agreement":
            name, data = f"agreement.{rec.status}", {"out_agreement_no": rec.out_agreement_no, "agreement_no": rec.agreement_no}
        else:
            what, bill = rec
            name, data = f"bill.{what}", books.bill_view(bill)
        body = json.dumps({"event_id": event.event_id, "event": name, "data": data}, ensure_ascii=False, separators=(",", ":")).encode()
        ts, nonce = str(int(books.wall().timestamp())), secrets.token_hex(16)
        sig = hmac_sha256_hex(config.secret, f"notify\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode())
        if tamper:
            sig = hmac_sha256_hex(config.secret, b"tampered" + body)
        return {"Content-Type": "application/json", "X-Bank-Merchant": config.merchant_id, "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce,
                "X-Bank-Signature": sig}, body

    notifier = Notifier(books, render, lambda resp: resp.status_code == 200, callback_url=config.callback_url,
                        delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("bank", TITLE, SCHEME, {"merchant_id": config.merchant_id, "bill_days": config.bill_days}),
                                     books, notifier, None))

    async def handle(request: Request, model: type[BaseModel] | None, work: Callable[[Any], dict[str, Any]]) -> Response:
        body = await request.body()
        h = request.headers
        ts, nonce = h.get("x-bank-timestamp", ""), h.get("x-bank-nonce", "")
        root = request.scope.get("root_path", "")
        path = request.url.path[len(root):] if root and request.url.path.startswith(root) else request.url.path
        target = path + (f"?{request.url.query}" if request.url.query else "")
        expected = hmac_sha256_hex(config.secret, f"request\n{request.method}\n{target}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode())
        if (h.get("x-bank-merchant") != config.merchant_id or not ts.isdigit() or abs(int(books.wall().timestamp()) - int(ts)) > 300
                or not hmac_equal(h.get("x-bank-signature"), expected)):
            return answer({"code": "SIGNATURE_INVALID", "message": "signature verification failed"}, nonce, 401)
        try:
            await books.before_call()
            books.sweep_overdue()
            parsed = None
            if model is not None:
                try:
                    parsed = model.model_validate_json(body or b"{}")
                except ValidationError as exc:
                    first = exc.errors()[0]
                    return answer({"code": "INVALID_REQUEST", "message": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}, nonce, 400)
            result = work(parsed)
            await books.after_effect()
            return answer({"code": "OK", **result}, nonce)
        except SandboxRefusal as exc:
            return answer({"code": exc.code, "message": exc.message}, nonce, exc.status)

    def agreement_view(a: AgreementRec) -> dict[str, Any]:
        return {k: v for k, v in books.line_view(a).items() if k != "bills"}

    def enrol(req: EnrolIn) -> dict[str, Any]:
        if req.consent.version not in config.consent_versions:
            raise SandboxRefusal("CONSENT_REQUIRED", "the holder has not accepted the current credit terms")
        return agreement_view(books.enrol(req.out_agreement_no, req.holder_token, yuan(req.single_limit, "single_limit")))

    @app.post("/credit/enrolments", summary="Enrol a holder (with consent): score, grant a line")
    async def post_enrol(request: Request) -> Response:
        return await handle(request, EnrolIn, enrol)

    @app.get("/credit/enrolments/{no}", summary="An enrolment (agreement) and its line's headline figures")
    async def get_enrolment(no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: agreement_view(books.agreement(no)))

    @app.post("/credit/enrolments/{no}/close", summary="Close the line to new payments (bills stay due)")
    async def close(no: str, request: Request) -> Response:
        return await handle(request, Empty, lambda _: agreement_view(books.terminate_agreement(no)))

    @app.get("/credit/enrolments/{no}/line", summary="The line: limit, used, available, status, bills")
    async def line(no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: books.line_view(books.agreement(no)))

    @app.post("/credit/payments", summary="Reserve on the line and pay the hospital from it")
    async def pay(request: Request) -> Response:
        return await handle(request, PaymentIn, lambda r: payment_view(books.pay_now(r.out_trade_no, r.agreement_no, yuan(r.amount, "amount"),
                                                                                      r.description)))

    @app.post("/credit/reservations", summary="Reserve on the line (two-phase)")
    async def reserve(request: Request) -> Response:
        return await handle(request, PaymentIn, lambda r: payment_view(books.reserve(r.out_trade_no, r.agreement_no, yuan(r.amount, "amount"),
                                                                                     r.description)))

    @app.post("/credit/reservations/{no}/capture", summary="Pay the hospital from a reservation")
    async def capture(no: str, request: Request) -> Response:
        return await handle(request, Empty, lambda _: payment_view(books.capture(no)))

    @app.post("/credit/reservations/{no}/release", summary="Release a reservation")
    async def release(no: str, request: Request) -> Response:
        return await handle(request, Empty, lambda _: payment_view(books.release(no)))

    @app.get("/credit/payments/{no}", summary="A payment: the truth")
    async def payment(no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: payment_view(books.trade(no)))

    def refund(r: RefundIn) -> dict[str, Any]:
        rec = books.refund(r.out_trade_no, r.out_refund_no, yuan(r.amount, "amount"), None)
        return refund_view(rec)

    @app.post("/credit/refunds", summary="Refund a paid bill's payment (credited back to the line)")
    async def post_refund(request: Request) -> Response:
        return await handle(request, RefundIn, refund)

    @app.get("/credit/refunds/{no}", summary="A refund")
    async def get_refund(no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: refund_view(books.refund_of(no)))

    @app.post("/credit/bills/{bill_no}/repayments", summary="Repay (part of) a bill; anyone holding a payer token may repay")
    async def repay(bill_no: str, request: Request) -> Response:
        return await handle(request, RepayIn, lambda r: books.bill_view(books.repay(bill_no, r.out_repayment_no, yuan(r.amount, "amount"),
                                                                                     r.payer_token)))

    @app.post("/payouts", summary="Pay an institution on the agency's instruction (idempotent by out_instruction_no)")
    async def post_payout(request: Request) -> Response:
        return await handle(request, PayoutIn, lambda r: payout_view(books.payout(r.out_instruction_no, r.payee_account, r.payee_name,
                                                                                   yuan(r.amount, "amount"), r.purpose)))

    @app.get("/payouts/{no}", summary="A payment instruction: ACCEPTED, then CONFIRMED once paid; or FAILED")
    async def get_payout(no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: payout_view(books.payout_of(no)))

    @app.post("/sandbox/accounts/closed", summary="SANDBOX: close an account (credits to it are then returned: ACCOUNT_CLOSED)")
    async def close_account(body: AccountIn) -> dict[str, Any]:
        with books.lock:
            books.closed_accounts.add(body.account)
        return {"closed": sorted(f"****{a[-4:]}" for a in books.closed_accounts)}

    @app.get("/statements/{day}", summary="The day's statement (payments the bank made to hospitals, refunds)")
    async def statement(day: str, request: Request) -> Response:
        def work(_: None) -> dict[str, Any]:
            try:
                d = date.fromisoformat(day)
            except ValueError:
                raise SandboxRefusal("INVALID_DATE", "the day must be YYYY-MM-DD") from None
            return {"content": render_statement(d, *books.statement(d))}
        return await handle(request, None, work)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": datetime.now().isoformat()}

    return app
