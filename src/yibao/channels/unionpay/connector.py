"""UnionPay 全渠道 (ACP 5.1.0) connector: signed form posts over async HTTP. The wire format is in transformers.

An order at UnionPay is named by `orderId` and `txnTime` together: `pay`/`refund` send the time the platform
recorded the order (`PaymentRequest.sent_at`, `RefundRequest.sent_at`) and `query`/`query_refund`/
`query_agreement` take it again as the optional keyword ``sent_at`` (`base.sent_at_kw`). Without it the
connector uses the time it sent in this process, if it did; otherwise it cannot name the order and the outcome
stays unknown — never "not found" on a guessed time.
"""

from __future__ import annotations

import zipfile
import zlib
from collections import OrderedDict
from datetime import date, datetime
from typing import Mapping
from urllib.parse import urlencode

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    Declined,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SigningStart,
    Statement,
    StatementError,
    declined,
    unknown,
)
from yibao.channels.connector import Connector
from yibao.channels.http import send
from yibao.channels.unionpay import transformers as tx
from yibao.channels.wire import WireError

UnionPayConfig = tx.UnionPayConfig
_REMEMBERED = 10_000


class UnionPayChannel(Connector):
    """UnionPay's online gateway (the SANDBOX unionpay speaks the same protocol)."""

    config: UnionPayConfig
    names_orders_by_time = True  # orderId + txnTime (base.sent_at_kw)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._sent: OrderedDict[tuple[str, str], tuple[datetime, int]] = OrderedDict()  # (kind, orderId) → (txnTime, limit)

    def __repr__(self) -> str:
        return f"UnionPayChannel({self.config.base_url!r}, merId={self.config.mer_id!r})"

    # -- the orders' times --
    def _remember(self, kind: str, order_id: str, at: datetime, limit: int = 0) -> None:
        self._sent[(kind, order_id)] = (at, limit)
        self._sent.move_to_end((kind, order_id))
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)

    def _known(self, kind: str, order_id: str) -> datetime | None:
        known = self._sent.get((kind, order_id))
        return known[0] if known else None

    def _time_of(self, kind: str, order_id: str, sent_at: datetime | None) -> datetime:
        if sent_at is not None:
            return sent_at
        known = self._sent.get((kind, order_id))
        if known is None:
            raise unknown(self.name, "txn_time_unknown", f"the txnTime of {order_id} is not known here (pass sent_at)")
        return known[0]

    # -- the wire --
    async def _call(self, path: str, params: dict[str, str], what: str, *, url: str | None = None) -> tuple[str, dict[str, str]]:
        resp = await send(self.name, url or self.config.base_url, "POST", path, urlencode(params).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}, self.config.timeout, self._transport)
        answer = tx.open_answer(self.config, resp.status_code, resp.content, what, self._clock())
        return tx.check_resp(self.config, answer, what), answer

    # -- agreements (无跳转 tokens) --
    async def start_signing(self, req: AgreementRequest) -> SigningStart:
        """The front-end token opening (79/00): a signed form the holder's browser posts to UnionPay's frontTransReq.do
        (nothing is sent by us). The opening is told by the 79 notification to backUrl and by the 78 query, which
        names the opening by orderId and this txnTime (remembered here; the platform keeps the pending row's time)."""
        at = req.sent_at or self._clock()
        self._remember("open", req.out_agreement_no, at, req.limit_fen)
        form = tx.open_token_params(self.config, req, at)
        return SigningStart(req.out_agreement_no, self.config.base_url.rstrip("/") + tx.FRONT_PATH, method="POST", form=form)

    async def query_agreement(self, out_agreement_no: str, *, sent_at: datetime | None = None) -> Agreement:
        at = self._time_of("open", out_agreement_no, sent_at)
        limit = self._sent.get(("open", out_agreement_no), (at, 0))[1]
        _, answer = await self._call(tx.BACK_PATH, tx.open_query_params(self.config, out_agreement_no, at), f"token opening {out_agreement_no}")
        return self._parse(tx.agreement_from, answer, out_agreement_no, limit)

    async def terminate_agreement(self, out_agreement_no: str, *, sent_at: datetime | None = None) -> Agreement:
        """Delete the token (74/01, a new order of its own), then the opening's query says what holds."""
        current = await self.query_agreement(out_agreement_no, sent_at=sent_at)
        if current.status == "active":
            now = self._clock()
            order_id = ("D" + out_agreement_no)[:32]
            await self._call(tx.BACK_PATH, tx.delete_token_params(self.config, order_id, current.agreement_no, now),
                             f"deleting the token of {out_agreement_no}")
        return await self.query_agreement(out_agreement_no, sent_at=sent_at)

    # -- payments --
    async def pay(self, req: PaymentRequest) -> PaymentResult:
        """Consume (01/01). 00 means accepted, 12 that this order was sent before: either way the query says what became of it."""
        at = req.sent_at or self._known("trade", req.out_trade_no) or self._clock()  # a resend is the same order: the same time
        self._remember("trade", req.out_trade_no, at)
        await self._call(tx.BACK_PATH, tx.pay_params(self.config, req, at), "the payment")
        # 00 (accepted) or 12 (sent before — a resend, or another txnTime we cannot know): the query decides, and
        # whatever it cannot say for sure stays unknown (Connector._after_acceptance).
        return await self._after_acceptance(lambda: self.query(req.out_trade_no, sent_at=at), out_trade_no=req.out_trade_no,
                                            amount_fen=req.amount_fen, what=f"payment {req.out_trade_no}")

    async def query(self, out_trade_no: str, *, sent_at: datetime | None = None) -> PaymentResult:
        at = self._time_of("trade", out_trade_no, sent_at)
        _, answer = await self._call(tx.QUERY_PATH, tx.query_params(self.config, out_trade_no, at), f"order {out_trade_no}")
        return self._parse(tx.payment_from, answer, out_trade_no)

    async def refund(self, req: RefundRequest) -> RefundResult:
        """退货 (04/00) naming the trade by its queryId. 00 means accepted: the refund's query gives its state now
        (processing until UnionPay decides; the notification or a later query tells)."""
        orig_qry_id = req.trade_no
        if orig_qry_id is None:
            trade = await self.query(req.out_trade_no, sent_at=req.trade_sent_at)
            if trade.trade_no is None or trade.status != "succeeded":
                raise declined(self.name, "TRADE_NOT_PAID", "the order is not paid")
            orig_qry_id = trade.trade_no
        at = req.sent_at or self._known("refund", req.out_refund_no) or self._clock()
        self._remember("refund", req.out_refund_no, at)
        await self._call(tx.BACK_PATH, tx.refund_params(self.config, req, orig_qry_id, at), "the refund")
        # 00 accepted or 12 sent before: the refund's query decides (as for a payment).
        return await self._after_acceptance(lambda: self.query_refund(req.out_trade_no, req.out_refund_no, sent_at=at),
                                            out_trade_no=req.out_trade_no, out_refund_no=req.out_refund_no, amount_fen=req.amount_fen,
                                            what=f"refund {req.out_refund_no}")

    async def query_refund(self, out_trade_no: str, out_refund_no: str, *, sent_at: datetime | None = None) -> RefundResult:
        at = self._time_of("refund", out_refund_no, sent_at)
        _, answer = await self._call(tx.QUERY_PATH, tx.query_params(self.config, out_refund_no, at), f"refund {out_refund_no}")
        if answer.get("reqReserved") not in (None, "", out_trade_no):
            raise unknown(self.name, "mismatched_answer", "the refund belongs to another order")
        return self._parse(tx.refund_from, answer, out_trade_no, out_refund_no)

    # -- notifications --
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, body, self._clock())

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    # -- statements --
    async def statement(self, day: date) -> Statement:
        what = f"the statement of {day}"
        try:
            _, answer = await self._call(tx.FILE_PATH, tx.file_params(self.config, day, self._clock()), what,
                                         url=self.config.file_url or self.config.base_url)
        except Declined as exc:
            raise StatementError(self.name, "statement_unavailable", "对账文件暂不可取", f"{self.name}: {what} is not available ({exc.code})") from None
        try:
            text = tx.zm_text(tx.unpack_file(answer["fileContent"]), self.config.mer_id)
        except (KeyError, ValueError, WireError, zlib.error, zipfile.BadZipFile) as exc:  # binascii.Error is a ValueError
            raise StatementError(self.name, "statement_unreadable", "对账单文件无法解压", f"{self.name}: the file does not unpack ({exc})") from None
        return tx.parse_statement(self.name, text, day, self.config.mer_id)
