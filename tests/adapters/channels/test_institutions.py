"""Every sandbox institution, over real HTTP on 127.0.0.1, through the platform's connector.

The same story for each: agreement, payment, query, refund, notifications (verified, tampered,
duplicated, dropped), timeouts, declines, statements. Institution-specific behaviour (the bank's
credit line) has its own module.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.support.channels import CLIENT_TIMEOUT_S, sign_on_page, signing_request
from yibao.channels import BadSignature, Declined, NotFoundAtChannel, OutcomeUnknown, PaymentRequest, RefundRequest, holder_token
from yibao.channels.base import sent_at_kw
from yibao.channels.wire import china_time
from yibao.sandbox.channels import NAMES

HOLDER_KEY = b"k" * 32


def run(coro):
    return asyncio.run(coro)


def no() -> str:
    return uuid.uuid4().hex[:24].upper()


def never_sent(channel) -> dict:
    """For an order never sent: UnionPay names orders by number and send time (txnTime), so say one."""
    return sent_at_kw(channel, datetime.now(timezone.utc))


@pytest.fixture(params=NAMES)
def live(request, channel_world):
    if request.param not in channel_world:
        pytest.fail(f"sandbox {request.param} is not running")
    return request.getfixturevalue(request.param)


async def signed_up(live, limit_fen: int = 2000_00) -> str:
    agreement = await sign_on_page(live.channel, signing_request(live, no(), holder_token(HOLDER_KEY, no(), live.name), limit_fen))
    assert agreement.status == "active"
    return agreement.agreement_no


def test_agreement_is_signed_queried_and_terminated(live):
    async def story():
        out = no()
        token = holder_token(HOLDER_KEY, "person-1", live.name)
        signed = await sign_on_page(live.channel, signing_request(live, out, token, 300_00))
        assert (signed.out_agreement_no, signed.status) == (out, "active") and signed.agreement_no and signed.limit_fen > 0
        assert await live.channel.query_agreement(out) == signed
        ended = await live.channel.terminate_agreement(out)
        assert (ended.status, ended.agreement_no) == ("terminated", signed.agreement_no)
        assert (await live.channel.query_agreement(out)).status == "terminated"
        with pytest.raises(Declined) as exc:
            await live.channel.pay(PaymentRequest(no(), 100, "门诊缴费", signed.agreement_no))
        assert exc.value.code.endswith("AGREEMENT_NOT_ACTIVE") or "AGREEMENT_NOT_ACTIVE" in exc.value.message_en
        with pytest.raises(NotFoundAtChannel):
            await live.channel.query_agreement(no(), **never_sent(live.channel))
    run(story())


def test_pay_query_and_the_verified_notification_agree(live):
    async def story():
        agreement = await signed_up(live)
        out = no()
        paid = await live.channel.pay(PaymentRequest(out, 123_45, "门诊缴费 诊查费", agreement))
        assert (paid.out_trade_no, paid.status, paid.amount_fen) == (out, "succeeded", 123_45) and paid.trade_no
        truth = await live.channel.query(out)
        assert (truth.status, truth.amount_fen, truth.trade_no, truth.refunded_fen) == ("succeeded", 123_45, paid.trade_no, 0)
        await live.flush()
        got = [n for n in live.fresh() if n.kind == "payment" and n.out_trade_no == out]
        assert len(got) == 1
        assert (got[0].status, got[0].amount_fen, got[0].trade_no) == ("succeeded", 123_45, paid.trade_no)
        # The same order number with the same parameters is the same trade, not a second charge.
        again = await live.channel.pay(PaymentRequest(out, 123_45, "门诊缴费 诊查费", agreement))
        assert again.trade_no == paid.trade_no
        # With other parameters: not a decline (the platform would void an order whose number the institution holds,
        # perhaps collected) but unknown, for an operator; the trade under that number is untouched.
        with pytest.raises(OutcomeUnknown):
            await live.channel.pay(PaymentRequest(out, 999, "门诊缴费", agreement))
        assert (await live.channel.query(out)).amount_fen == 123_45
        with pytest.raises(NotFoundAtChannel):
            await live.channel.query(no(), **never_sent(live.channel))
    run(story())


def test_a_payment_above_the_password_free_limit_is_declined(live):
    """The limit is the institution's (WeChat's plan, Alipay's product, UnionPay's token: 50 000 yuan in the sandboxes);
    a credit line's is what the bank granted the enrolment."""
    limit = 50_00 if live.name == "bank" else 50_000_00

    async def story():
        agreement = await signed_up(live, limit_fen=limit)
        out = no()
        with pytest.raises(Declined) as exc:
            await live.channel.pay(PaymentRequest(out, limit + 1, "住院预交", agreement))
        assert "EXCEEDS_PASSWORD_FREE_LIMIT" in exc.value.message_en
        assert (await live.channel.query(out)).status == "failed"
    run(story())


def test_refunds_in_parts_never_beyond_the_payment(live):
    async def story():
        agreement = await signed_up(live)
        out = no()
        await live.channel.pay(PaymentRequest(out, 100_00, "门诊缴费", agreement))
        first, second = no(), no()
        r1 = await live.channel.refund(RefundRequest(out, first, 30_00, 100_00, "退一项检查"))
        assert (r1.status, r1.amount_fen, r1.out_refund_no, r1.out_trade_no) == ("succeeded", 30_00, first, out) and r1.refund_id
        with pytest.raises(Declined):
            await live.channel.refund(RefundRequest(out, no(), 70_01, 100_00))
        r2 = await live.channel.refund(RefundRequest(out, second, 70_00, 100_00))
        assert r2.status == "succeeded"
        q = await live.channel.query_refund(out, first)
        assert (q.status, q.amount_fen, q.refund_id) == ("succeeded", 30_00, r1.refund_id)
        # UnionPay's query of a consume does not say how much of it was refunded (its refunds are orders of their own);
        # WeChat Pay's order query says REFUND (转入退款) without an amount: its refunds' queries carry the amounts.
        assert (await live.channel.query(out)).refunded_fen == (0 if live.name in ("unionpay", "wxpay") else 100_00)
        with pytest.raises(NotFoundAtChannel):
            await live.channel.query_refund(out, no(), **never_sent(live.channel))
        await live.flush()
        refunds = sorted((n.out_refund_no, n.amount_fen, n.status) for n in live.fresh() if n.kind == "refund")
        assert refunds == sorted([(first, 30_00, "succeeded"), (second, 70_00, "succeeded")])
    run(story())


def test_a_tampered_notification_is_refused_and_the_resend_is_accepted(live):
    async def story():
        agreement = await signed_up(live)
        await live.flush()
        await live.knobs(bad_notification_signature=True, notify_delays_ms=[5_000, 5_000])  # no resend before we flush
        out = no()
        await live.channel.pay(PaymentRequest(out, 8_80, "药店购药", agreement))
        await live.flush()
        mine = [r for r in live.receipts if r.notification is None or r.notification.out_trade_no == out]
        assert mine and all(r.notification is None and r.refusal for r in mine)  # refused, never trusted
        await live.knobs(bad_notification_signature=False)
        await live.flush()  # the resend
        accepted = [n for n in live.fresh() if n.out_trade_no == out]
        assert len(accepted) == 1 and accepted[0].status == "succeeded"
    run(story())


def test_a_duplicated_notification_is_handed_on_once(live):
    async def story():
        agreement = await signed_up(live)
        await live.knobs(duplicate_notification_rate=1.0)
        out = no()
        await live.channel.pay(PaymentRequest(out, 15_00, "门诊缴费", agreement))
        await live.flush()
        mine = [r for r in live.receipts if r.notification is not None and r.notification.out_trade_no == out]
        assert len(mine) == 2 and [r.fresh for r in mine].count(True) == 1
    run(story())


def test_a_dropped_notification_leaves_the_query_as_the_truth(live):
    async def story():
        agreement = await signed_up(live)
        await live.knobs(drop_notification_rate=1.0)
        out = no()
        paid = await live.channel.pay(PaymentRequest(out, 42_00, "门诊缴费", agreement))
        await live.flush()
        assert not [r for r in live.receipts if r.notification is not None and r.notification.out_trade_no == out]
        truth = await live.channel.query(out)
        assert (truth.status, truth.trade_no, truth.amount_fen) == ("succeeded", paid.trade_no, 42_00)
    run(story())


def test_a_lost_answer_is_an_unknown_outcome_and_the_query_finds_the_truth(live):
    # The payment is booked, then the connection is cut mid-answer. (A silent institution, waited out to the client's
    # timeout, ends the same way, as code "timeout": tests/adapters/channels/test_http_pool.py, at a 1 s timeout.)
    async def story():
        agreement = await signed_up(live)
        await live.knobs(cut_answer_rate=1.0)
        out = no()
        with pytest.raises(OutcomeUnknown) as exc:
            await live.channel.pay(PaymentRequest(out, 66_00, "门诊缴费", agreement))
        assert exc.value.code == "unreachable" and not isinstance(exc.value, Declined)
        await live.knobs(cut_answer_rate=0.0)
        truth = await live.channel.query(out)
        assert (truth.status, truth.amount_fen) == ("succeeded", 66_00)  # the money moved; only the answer was lost
    run(story())


def test_an_injected_server_error_is_unknown_and_nothing_happened(live):
    async def story():
        agreement = await signed_up(live)
        await live.knobs(server_error_rate=1.0)
        out = no()
        with pytest.raises(OutcomeUnknown):
            await live.channel.pay(PaymentRequest(out, 10_00, "门诊缴费", agreement))
        await live.knobs(server_error_rate=0.0)
        with pytest.raises(NotFoundAtChannel):
            await live.channel.query(out)
    run(story())


def test_the_error_rate_knob_declines_definitely(live):
    async def story():
        agreement = await signed_up(live)
        await live.knobs(error_rate=1.0)
        out = no()
        with pytest.raises(Declined) as exc:
            await live.channel.pay(PaymentRequest(out, 20_00, "门诊缴费", agreement))
        assert not isinstance(exc.value, OutcomeUnknown)
        await live.knobs(error_rate=0.0)
        truth = await live.channel.query(out)
        assert truth.status == "failed" and truth.error_code
        await live.flush()
        failed = [n for n in live.fresh() if n.out_trade_no == out]
        assert [n.status for n in failed] == ["failed"]
    run(story())


def test_a_delayed_payment_is_processing_then_succeeds(live):
    async def story():
        agreement = await signed_up(live)
        # A long delay on the sandbox's business clock, then the clock moved past it: no race with real time
        # (UnionPay's pay also queries, which under load could land after a short delay had passed).
        await live.knobs(settle_delay_ms=60_000)
        out = no()
        first = await live.channel.pay(PaymentRequest(out, 77_00, "门诊缴费", agreement))
        assert first.status == "processing"
        live.runtime.books.clock_offset += timedelta(minutes=2)
        await live.flush()
        assert [n.status for n in live.fresh() if n.out_trade_no == out] == ["succeeded"]
        assert (await live.channel.query(out)).status == "succeeded"
    run(story())


def test_the_days_statement_carries_the_trades_and_refunds(live):
    async def story():
        agreement = await signed_up(live)
        outs = [no(), no(), no()]
        amounts = [12_34, 5_00, 900_01]  # within the smallest credit line the sandbox bank grants (1000.00)
        paid = [await live.channel.pay(PaymentRequest(o, a, "门诊缴费,含逗号", agreement)) for o, a in zip(outs, amounts)]
        refund_no = no()
        await live.channel.refund(RefundRequest(outs[2], refund_no, 1_01, amounts[2]))
        day: date = china_time(paid[0].paid_at).date()
        st = await live.channel.statement(day)
        trades = {r.out_trade_no: r for r in st.rows if r.kind == "trade"}
        for o, a, p in zip(outs, amounts, paid):
            assert (trades[o].amount_fen, trades[o].trade_no) == (a, p.trade_no)
        refunds = [r for r in st.rows if r.kind == "refund" and r.out_refund_no == refund_no]
        assert [(r.out_trade_no, r.amount_fen) for r in refunds] == [(outs[2], 1_01)]
        books_trades, books_refunds = live.runtime.books.statement(day)
        assert (st.trade_count, st.trade_total_fen) == (len(books_trades), sum(t.amount_fen for t in books_trades))
        assert (st.refund_count, st.refund_total_fen) == (len(books_refunds), sum(r.amount_fen for r in books_refunds))
        empty = await live.channel.statement(date(2001, 1, 1))
        assert (empty.rows, empty.trade_count, empty.trade_total_fen) == ((), 0, 0)
    run(story())


def test_a_forged_answer_is_not_believed(live):
    """A connector configured with another key for the institution refuses every answer (an impostor's)."""
    from yibao.sandbox.channels import pair

    stranger = pair(live.name, seed=1).connector(live.url, timeout=CLIENT_TIMEOUT_S)

    async def story():
        with pytest.raises((BadSignature, Declined)) as exc:
            await stranger.query(no(), **never_sent(stranger))
        # Either the sandbox refuses our unknown key (a signed "no") or we refuse its signature: never a trusted result.
        assert isinstance(exc.value, (BadSignature, Declined))
        with pytest.raises(BadSignature):
            stranger.verify_notification({}, b"{}")
    run(story())


class Recorder(httpx.AsyncBaseTransport):
    """The real transport, keeping every request's bytes as they went on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[bytes] = []
        self.bodies: list[tuple[httpx.URL, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.sent.append(str(request.url).encode() + b"\n" + b"\n".join(k + b": " + v for k, v in request.headers.raw) + b"\n\n" + body)
        self.bodies.append((request.url, body))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


FUND_FIELD_WORDS = {"fund", "hifp", "hifmi", "hifob", "acct", "account", "pool", "insurance", "insur", "med", "maf", "gov", "psn", "certno"}


def words(name: str) -> set[str]:
    """out_refund_no → {out, refund, no}; medInsFee → {med, ins, fee}."""
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)}
FUND_TEXT = ["统筹", "基金", "个人账户", "医保"]


def field_names(url: httpx.URL, body: bytes) -> set[str]:
    """Every field name a request carries: query and form keys, JSON keys at any depth (a JSON string value inside a form too)."""
    names = set(url.params.keys())

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                names.add(str(k))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value and value[0] in "{[":
            try:
                walk(json.loads(value))
            except ValueError:
                pass

    text = body.decode()
    if text and text[0] in "{[":
        walk(json.loads(text))
    elif text:
        form = dict(parse_qsl(text, keep_blank_values=True))
        walk(form)
    return names


def test_no_fund_share_id_number_or_name_ever_goes_on_the_wire(live):
    """Seed 002: the fund share is settled between the agency and the hospital only. Inspect the bytes."""
    recorder = Recorder()
    channel = type(live.channel)(live.channel.config, transport=recorder)
    id_number, name = "440301199001011234", "李明"

    async def story():
        token = holder_token(HOLDER_KEY, id_number, live.name)
        agreement = await sign_on_page(channel, signing_request(live, no(), token, 1000_00))
        out = no()
        await channel.pay(PaymentRequest(out, 35_60, "门诊缴费", agreement.agreement_no))
        await channel.query(out)
        refund_no = no()
        await channel.refund(RefundRequest(out, refund_no, 5_60, 35_60))
        await channel.query_refund(out, refund_no)
        await channel.terminate_agreement(agreement.out_agreement_no)
    run(story())
    assert len(recorder.sent) >= 6
    seen = set().union(*(field_names(u, b) for u, b in recorder.bodies))
    assert [n for n in seen if "amount" in n.lower() or "amt" in n.lower()]  # the inspection does see the fields
    for raw in recorder.sent:
        text = raw.decode()
        assert id_number not in text and name not in text
        assert not [w for w in FUND_TEXT if w in text], text[:300]
    for url, body in recorder.bodies:
        names = field_names(url, body)
        # WeChat's contract_display_account is the holder's display name on the signing page, not a fund account.
        assert not [n for n in names if words(n) & FUND_FIELD_WORDS and n != "contract_display_account"], names


def test_the_wire_inspection_would_catch_a_fund_share():
    """The check above can fail: a body with a fund share (as a WeChat med-ins order has) is caught."""
    url = httpx.URL("http://x/v3/med-ins/orders?mchid=1")
    assert words("out_refund_no") == {"out", "refund", "no"}
    for body in (b'{"amount":{"total":1,"gov_fee":5}}', b'{"med_ins_cash_fee":1}', b"txnAmt=1&hifp_pay=2",
                 b'biz_content={"pool_fund":"1.00"}', b'{"acctPay":1}'):
        assert [n for n in field_names(url, body) if words(n) & FUND_FIELD_WORDS], body


def test_knobs_through_the_python_object_and_http_agree_and_a_seed_replays_the_same_failures(wxpay):
    assert wxpay.runtime.set_knobs(error_rate=0.5, seed=5)["error_rate"] == 0.5
    assert httpx.get(f"{wxpay.url}/sandbox/knobs").json()["seed"] == 5
    assert httpx.put(f"{wxpay.url}/sandbox/knobs", json={"error_rate": 2}).status_code == 422
    assert httpx.put(f"{wxpay.url}/sandbox/knobs", json={"no_such_knob": 1}).status_code == 422

    async def pattern() -> list[bool]:
        await wxpay.knobs(error_rate=0.0)
        agreement = await signed_up(wxpay)
        await wxpay.knobs(error_rate=0.5, seed=5)
        outcome = []
        for _ in range(12):
            try:
                await wxpay.channel.pay(PaymentRequest(no(), 1_00, "门诊缴费", agreement))
                outcome.append(True)
            except Declined:
                outcome.append(False)
        return outcome
    first, second = run(pattern()), run(pattern())
    assert first == second and True in first and False in first
