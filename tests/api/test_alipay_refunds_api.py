"""Refunds through Alipay's meanings, over HTTP (SQLite and PostgreSQL) against the SANDBOX alipay: an answer lost after
the refund was made is settled by `alipay.trade.fastpay.refund.query` (refund_status=REFUND_SUCCESS); a refund Alipay never
got (a refund query without refund_status: not refunded) is asked for again with the same out_request_no — never twice."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import his, key
from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.payments import LINES, payment_world
from yibao.app import create_app
from yibao.services import Context
from yibao.services.payments import recovery


@pytest.fixture
def pw(db, keyring, alipay):
    return payment_world(db, keyring, alipay, limit=50000, balance=20000, timeout_ms=int(CLIENT_TIMEOUT_S * 1000))


@pytest.fixture
def client(db, keyring):
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as c:
        yield c


def _pay(client, pw) -> str:  # noqa: ANN001
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                    headers={**his(pw), **key()})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    return r.json()["payment_id"]


def _refund(client, pw, payment_id: str, k: str):  # noqa: ANN001, ANN202
    return client.post(f"/api/v1/his/payments/{payment_id}/refunds", json={"scope": "all"}, headers={**his(pw), "Idempotency-Key": k})


def _refunds_at_alipay(alipay, payment_id: str) -> list[int]:  # noqa: ANN001
    return [r.amount_fen for r in alipay.runtime.books.refunds.values() if r.out_trade_no == payment_id and r.status == "succeeded"]


def test_a_lost_refund_answer_is_settled_by_alipays_refund_query(client, pw, alipay):
    payment_id = _pay(client, pw)
    cash = alipay.runtime.books.trades[payment_id].amount_fen
    alipay.runtime.set_knobs(cut_answer_rate=1.0, drop_notification_rate=1.0)
    k = uuid.uuid4().hex
    r = _refund(client, pw, payment_id, k)
    assert r.status_code == 202 and r.json()["status"] == "unknown", r.text
    assert _refunds_at_alipay(alipay, payment_id) == [cash]  # Alipay refunded; only its answer was lost
    alipay.runtime.set_knobs(cut_answer_rate=0.0)
    resolved = _refund(client, pw, payment_id, k)
    assert (resolved.status_code, resolved.json()["status"], resolved.json()["payment"]["status"]) == (200, "succeeded", "refunded")
    assert _refunds_at_alipay(alipay, payment_id) == [cash]


def test_a_refund_alipay_never_got_is_asked_for_again_by_recovery(client, pw, alipay, db, keyring, clock):
    payment_id = _pay(client, pw)
    cash = alipay.runtime.books.trades[payment_id].amount_fen
    alipay.runtime.set_knobs(server_error_rate=1.0)  # "system busy" before anything happens
    r = _refund(client, pw, payment_id, uuid.uuid4().hex)
    assert r.status_code == 202 and r.json()["status"] == "unknown", r.text
    assert _refunds_at_alipay(alipay, payment_id) == []
    alipay.runtime.set_knobs(server_error_rate=0.0)
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(Context.for_database(db, keyring)))
    assert report.refunds == {r.json()["refund_id"]: "succeeded"}  # the query said "not refunded": the same request again
    assert _refunds_at_alipay(alipay, payment_id) == [cash]
