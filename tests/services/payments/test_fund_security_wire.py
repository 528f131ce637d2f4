"""Seed 002 on the wire: every byte the platform sends a payment institution during a one-code payment is
recorded, and none carries a fund share, the account share, an ID number or a name — only the cash
amount, our order number, a description and an opaque holder token. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.support.identity import id_number_of, name_of
from tests.support.payments import payment_world
from yibao.domain import payment_order as po
from yibao.sandbox.channels import NAMES
from yibao.services.agency import connectors as channel_registry
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments

LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A002", "name": "住院床位费", "unit_price": "1234.56", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "C900", "name": "保健品", "unit_price": "87.65", "quantity": "1"},
]


class Recorder(httpx.AsyncBaseTransport):
    """Passes every request on and keeps its bytes: method, URL, headers, body."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        head = f"{request.method} {request.url}\n" + "".join(f"{k}: {v}\n" for k, v in request.headers.items())
        self.sent.append(head.encode() + b"\n" + body)
        # One connection per request, closed here: no pool outlives the event loop of the call.
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(request)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw))


def forms(text: str) -> list[bytes]:
    """A string as it could appear on any institution's wire: raw UTF-8, JSON-escaped, URL-encoded."""
    return [text.encode(), json.dumps(text).strip('"').encode(), quote(text).encode(), quote_plus(text).encode()]


def amount_on_wire(fen: int, wire: bytes) -> bool:
    yuan = f"{fen // 100}.{fen % 100:02d}".encode()
    return yuan in wire or re.search(rb"(?<![0-9])" + str(fen).encode() + rb"(?![0-9])", wire) is not None


@pytest.fixture(params=NAMES)
def live(request, channel_world):
    return request.getfixturevalue(request.param)


def test_only_the_cash_share_reaches_the_institution(db, keyring, live):
    pw = payment_world(db, keyring, live, balance=31415, limit=200000)
    recorder = Recorder()
    done = pw.pay(key="wire", lines=LINES, use_account=True, ctx=pw.ctx(channel_registry.Connectors(keyring, transport=recorder)))
    assert done.status == po.COMPLETED, done
    s = db.run(lambda c: payments.receipt(c, done), write=False)
    fund_shares = [int(round(float(v) * 100)) for k, v in s["fund"].items() if float(v) > 0]
    assert done.fund_total > 0 and done.account_pay == 31415 and done.cash_pay > 0 and len(recorder.sent) >= 1  # the payment (WeChat: its notice first)
    wire = b"\n".join(recorder.sent)

    for fen in {*fund_shares, done.fund_total, done.account_pay, done.total}:
        assert not amount_on_wire(fen, wire), f"{fen} fen (a fund or account share, or the total) went to {live.name}"
    secrets = [id_number_of(1), name_of(1), pw.w.employee.id]
    for text in secrets:
        for form in forms(text):
            assert form not in wire, f"{text!r} went to {live.name}"

    assert amount_on_wire(done.cash_pay, wire)
    assert done.id.encode() in wire
    assert any(form in wire for form in forms(payments.CASH_DESCRIPTION))
    # The holder is named by the agreement they signed on the institution's page (before this payment), nothing else.
    agreement_no = db.run(lambda c: cash_leg.agreement_for(c, keyring, pw.w.employee.id, pw.pi_id), write=False).agreement_no
    assert agreement_no and agreement_no.encode() in wire
