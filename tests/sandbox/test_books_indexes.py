"""The sandbox books' indexes: lookups by agreement or trade number, open trades and pending notifications answer
what a scan of the whole history answered, whoever writes the books (the books themselves, the demo, a test)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx

from yibao.sandbox.channels.core import AgreementRec, Books, TradeRec
from yibao.sandbox.channels.notifier import Notifier

T0 = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)


def test_agreements_by_number_follow_every_write():
    books = Books("WX", seed=1)
    a = books.sign_agreement("A1", "holder-1", 100_00)
    assert books.agreement_by_no(a.agreement_no) == a and books.agreement_by_no("nope") is None
    ended = books.terminate_agreement("A1")
    assert books.agreement_by_no(a.agreement_no) == ended and ended.status == "terminated"
    books.agreements["A2"] = AgreementRec("A2", "AG-DEMO", "holder-2", 50_00, "active", T0)  # as the demo restores one
    books.agreements["A3"] = AgreementRec("A3", "AG-DEMO", "holder-3", 50_00, "active", T0)  # same number: the first wins
    assert books.agreement_by_no("AG-DEMO").out_agreement_no == "A2"
    books.agreements["A2"] = replace(books.agreements["A2"], agreement_no="AG-OTHER")
    assert books.agreement_by_no("AG-DEMO").out_agreement_no == "A3" and books.agreement_by_no("AG-OTHER").out_agreement_no == "A2"
    books.agreements["A2"] = replace(books.agreements["A2"], agreement_no="AG-DEMO")  # A2 keeps its place before A3
    assert books.agreement_by_no("AG-DEMO").out_agreement_no == "A2"
    del books.agreements["A2"]
    assert books.agreement_by_no("AG-DEMO").out_agreement_no == "A3" and books.agreement_by_no("AG-OTHER") is None
    assert books.pay("T1", 10_00, "x", "AG-DEMO", None).status == "succeeded"


def test_delayed_payments_settle_in_booking_order_and_trades_are_found_by_number():
    now = [T0]
    books = Books("WX", seed=1, clock=lambda: now[0])
    a = books.sign_agreement("A1", "holder-1", 100_00)
    told: list[str] = []
    books.on_event = lambda event: told.append(event.record.out_trade_no)
    books.set_knobs({"settle_delay_ms": 1000})
    for no in ("T1", "T2", "T3"):
        books.pay(no, 1_00, "x", a.agreement_no, None)
    assert books.trades.settling() and [no for no, _ in books.trades.open()] == ["T1", "T2", "T3"]
    books.trades["T1"] = replace(books.trades["T1"], description="rewritten")  # a rewrite keeps T1's place
    now[0] += timedelta(seconds=2)
    books.settle_due()
    assert told == ["T1", "T2", "T3"] and not books.trades.settling() and books.trades.open() == []
    assert books.trade("T2").status == "succeeded" and books.trades.by_trade_no(books.trades["T2"].trade_no).out_trade_no == "T2"
    books.trades["X"] = TradeRec("X", "TN-X", 1_00, "x", "-", "succeeded", None, T0, paid_at=T0)  # as a test books one
    assert books.trades.by_trade_no("TN-X").out_trade_no == "X" and books.trades.by_trade_no(None) is None


def test_the_notifier_sends_only_what_is_pending_in_order():
    books = Books("WX", seed=1)
    sent: list[str] = []

    def ack(request: httpx.Request) -> httpx.Response:
        sent.append(request.content.decode())
        return httpx.Response(200 if request.content != b"T2" else 500)

    notifier = Notifier(books, lambda event, tamper: ({}, getattr(event.record, "out_trade_no", "agreement").encode()), lambda r: r.status_code == 200,
                        callback_url="http://platform.invalid/notify", delays_ms=(60_000,))
    a = books.sign_agreement("A1", "holder-1", 100_00)  # told too: the agreement

    async def story() -> dict[str, int]:
        notifier.ensure_started()
        notifier._client = httpx.AsyncClient(transport=httpx.MockTransport(ack))
        for no in ("T1", "T2", "T3"):
            books.pay(no, 1_00, "x", a.agreement_no, None)
        deadline = asyncio.get_running_loop().time() + 30  # the four deliveries, waited for (room for a loaded machine)
        while len(sent) < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        assert [d.event.record.out_trade_no for d in notifier.pending()] == ["T2"]  # failed once, resent later
        return await notifier.flush()

    counts = asyncio.run(story())
    assert sent == ["agreement", "T1", "T2", "T3", "T2"] and counts == {"delivered": 3, "given_up": 1}
    assert notifier.pending() == [] and len(notifier.deliveries) == 4
