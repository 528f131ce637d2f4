"""The SANDBOX bank's credit line (信用支付) over real HTTP: enrol, reserve, pay, bill, repay, overdue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.support.channels import CLIENT_TIMEOUT_S, sign_on_page
from yibao.channels import AgreementRequest, BadSignature, Declined, PaymentRequest, RefundRequest, holder_token
from yibao.channels.bank import transformers as tx
from yibao.channels.bank.connector import CreditConsent
from yibao.channels.wire import china_time
from yibao.sandbox.channels.bank import limit_for, score_of


def run(coro):
    return asyncio.run(coro)


def no() -> str:
    return uuid.uuid4().hex[:24].upper()


def token(who: str) -> str:
    return holder_token(b"h" * 32, who + no(), "bank")


async def enrolled(bank, single_limit: int = 2000_00):
    holder = token("holder")
    agreement = await sign_on_page(bank.channel, AgreementRequest(no(), holder, single_limit))
    return agreement, holder


async def move_clock(bank, days: int) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        (await client.post(f"{bank.url}/sandbox/clock", json={"days": days})).raise_for_status()


def test_enrolment_scores_the_holder_and_grants_a_line(bank):
    async def story():
        agreement, holder = await enrolled(bank)
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        assert line.score == score_of(holder) and 600 <= line.score < 900
        assert (line.limit_fen, line.available_fen, line.used_fen) == (limit_for(line.score), limit_for(line.score), 0)
        assert (line.status, line.overdue, line.bills, line.single_limit_fen) == ("active", False, (), 2000_00)
    run(story())


def test_enrolment_without_the_current_terms_is_refused(bank):
    async def story():
        with pytest.raises(Declined) as exc:
            await bank.channel.enrol(AgreementRequest(no(), token("h"), 100_00), CreditConsent("old-terms", datetime.now(timezone.utc)))
        assert "CONSENT_REQUIRED" in exc.value.message_en
    run(story())


def test_reserve_then_capture_makes_a_bill_and_release_gives_the_line_back(bank):
    async def story():
        agreement, _ = await enrolled(bank)
        a, b = no(), no()
        held = await bank.channel.reserve(PaymentRequest(a, 300_00, "住院预交", agreement.agreement_no))
        await bank.channel.reserve(PaymentRequest(b, 200_00, "门诊缴费", agreement.agreement_no))
        assert held.status == "processing"
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        assert (line.used_fen, line.available_fen) == (500_00, line.limit_fen - 500_00) and line.bills == ()
        paid = await bank.channel.capture(a)
        assert paid.status == "succeeded" and paid.paid_at is not None
        released = await bank.channel.release(b)
        assert (released.status, released.error_code) == ("failed", "RELEASED")
        with pytest.raises(Declined):
            await bank.channel.capture(b)  # released is final
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        assert (line.used_fen, line.available_fen) == (300_00, line.limit_fen - 300_00)
        [bill] = line.bills
        assert (bill.out_trade_no, bill.amount_fen, bill.outstanding_fen, bill.status) == (a, 300_00, 300_00, "open")
        assert bill.due_date == china_time(paid.paid_at).date() + timedelta(days=30)
    run(story())


def test_a_payment_beyond_the_available_line_is_declined(bank):
    async def story():
        agreement, _ = await enrolled(bank, single_limit=10_000_00)
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        await bank.channel.pay(PaymentRequest(no(), line.limit_fen - 100, "住院", agreement.agreement_no))
        with pytest.raises(Declined) as exc:
            await bank.channel.pay(PaymentRequest(no(), 101, "门诊", agreement.agreement_no))
        assert "CREDIT_LIMIT_EXCEEDED" in exc.value.message_en
        await bank.channel.pay(PaymentRequest(no(), 100, "门诊", agreement.agreement_no))  # exactly what is left
    run(story())


def test_a_family_member_repays_the_bill_in_two_parts(bank):
    async def story():
        agreement, _ = await enrolled(bank)
        out = no()
        await bank.channel.pay(PaymentRequest(out, 120_00, "门诊缴费", agreement.agreement_no))
        [bill] = await bank.channel.bills(agreement.out_agreement_no)
        daughter = token("daughter")
        part = await bank.channel.repay(bill.bill_no, no(), 20_00, daughter)
        assert (part.repaid_fen, part.outstanding_fen, part.status) == (20_00, 100_00, "open")
        with pytest.raises(Declined):
            await bank.channel.repay(bill.bill_no, no(), 100_01, daughter)
        done = await bank.channel.repay(bill.bill_no, no(), 100_00, daughter)
        assert (done.outstanding_fen, done.status) == (0, "repaid")
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        assert line.used_fen == 0 and line.available_fen == line.limit_fen
        await bank.flush()
        assert [(n.kind, n.status, n.data["subject"]) for n in bank.fresh() if n.kind == "credit"] == [("credit", "repaid", bill.bill_no)]
    run(story())


def test_a_refund_lowers_what_is_owed(bank):
    async def story():
        agreement, _ = await enrolled(bank)
        out = no()
        await bank.channel.pay(PaymentRequest(out, 80_00, "门诊缴费", agreement.agreement_no))
        await bank.channel.refund(RefundRequest(out, no(), 30_00, 80_00))
        [bill] = await bank.channel.bills(agreement.out_agreement_no)
        assert (bill.refunded_fen, bill.outstanding_fen) == (30_00, 50_00)
    run(story())


def test_an_overdue_bill_suspends_the_line_until_it_is_repaid(bank):
    async def story():
        agreement, holder = await enrolled(bank)
        await bank.channel.pay(PaymentRequest(no(), 60_00, "门诊缴费", agreement.agreement_no))
        [bill] = await bank.channel.bills(agreement.out_agreement_no)
        await move_clock(bank, 30)
        assert (await bank.channel.credit_line(agreement.out_agreement_no)).status == "active"  # due today: not yet overdue
        await move_clock(bank, 1)
        line = await bank.channel.credit_line(agreement.out_agreement_no)
        assert (line.status, line.overdue, line.bills[0].status) == ("suspended", True, "overdue")
        with pytest.raises(Declined) as exc:
            await bank.channel.pay(PaymentRequest(no(), 1_00, "门诊缴费", agreement.agreement_no))
        assert "LINE_SUSPENDED_OVERDUE" in exc.value.message_en
        await bank.flush()
        mine = [(n.status, n.data["subject"]) for n in bank.fresh() if n.kind == "credit" and n.data["agreement_no"] == agreement.agreement_no]
        assert mine == [("overdue", bill.bill_no)]
        await bank.channel.repay(bill.bill_no, no(), 60_00, holder)
        assert (await bank.channel.credit_line(agreement.out_agreement_no)).status == "active"
        await bank.channel.pay(PaymentRequest(no(), 1_00, "门诊缴费", agreement.agreement_no))
    run(story())


SECRET = b"s" * 32
CFG = tx.BankConfig("http://bank", "M1", SECRET)
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def test_hmac_signatures_are_bound_to_direction_request_and_body():
    body = b'{"x":1}'
    ts, nonce = str(int(NOW.timestamp())), "n1"
    good = {"X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce, "X-Bank-Signature": tx.answer_signature(SECRET, ts, nonce, "req1", body)}
    tx.verify_answer(CFG, good, body, "req1", NOW, "answer")
    for headers, data, req_nonce in [
        (good, b'{"x":2}', "req1"),  # body changed
        (good, body, "req2"),  # an answer to another request
        ({**good, "X-Bank-Signature": tx.notify_signature(SECRET, ts, nonce, body)}, body, "req1"),  # a notification's signature
        ({**good, "X-Bank-Signature": tx.answer_signature(b"t" * 32, ts, nonce, "req1", body)}, body, "req1"),  # another secret
    ]:
        with pytest.raises(BadSignature):
            tx.verify_answer(CFG, headers, data, req_nonce, NOW, "answer")
    with pytest.raises(BadSignature):
        tx.verify_answer(CFG, good, body, "req1", NOW + timedelta(minutes=6), "answer")  # stale


def test_a_notification_signed_as_a_request_is_refused():
    body = b'{"event_id":"E1","event":"payment.succeeded","data":{}}'
    ts, nonce = str(int(NOW.timestamp())), "n1"
    headers = {"X-Bank-Merchant": "M1", "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce,
               "X-Bank-Signature": tx.request_signature(SECRET, "POST", "/notify", ts, nonce, body)}
    with pytest.raises(BadSignature):
        tx.parse_notification(CFG, headers, body, NOW)
