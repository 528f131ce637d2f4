"""Racing one-code payments of one region (docs/architecture.md, Storage: one lock order): many holders pay at once,
each touching their personal account, the region's funds, the hospital's receivable and the region's audit chain.
Every payment completes, the books balance, and — counted where the unit of work re-runs a transient conflict — no
unit met a deadlock. On PostgreSQL a hold that waited on a fund row while another payment's post held the audit head
deadlocked (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from fastapi.testclient import TestClient

from tests.support.api import his, key
from tests.support.identity import bind, ecard, enrol_adult
from tests.support.payments import LINES, payment_world, sign_agreement
from tests.support.world import credit
from yibao.app import create_app
from yibao.domain import payment_order as po
from yibao.domain.identity import make_id_number
from yibao.store import db as store_db

HOLDERS = 16


def test_racing_payments_of_one_region_all_complete_without_a_deadlock(db, keyring, wxpay, monkeypatch):
    pw = payment_world(db, keyring, wxpay, balance=900000, limit=100000)
    holders = [pw.w.employee.id]
    for n in range(HOLDERS - 1):
        person = enrol_adult(db, keyring, n=10 + n, name=f"并发{n}")
        ecard(db, keyring, person.id, f"并发{n}", make_id_number("440301", date(1980, 1, 10 + n), 10 + n))  # as enrol_adult made it
        bind(db, person.id, pw.pi_id, password_free_limit=100000, make_default=True)
        sign_agreement(pw, person.id)  # on WeChat's page (the sandbox's), before any payment
        credit(db, person.id, 50000, f"race-{n}")
        holders.append(person.id)
    conflicts: list[str] = []
    transient = store_db._is_transient

    def counting(exc: BaseException) -> bool:
        orig = getattr(exc, "orig", exc)
        code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
        if code == "40P01":
            conflicts.append("deadlock")
        return transient(exc)
    monkeypatch.setattr(store_db, "_is_transient", counting)

    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:
        for holder in holders:  # each holder's first payment warms up; the race is of the payments after it
            r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(holder), "lines": LINES, "account": {"use": True}},
                            headers={**his(pw), **key()})
            assert r.status_code == 200 and r.json()["status"] == po.COMPLETED, r.text
        before = pw.balances()
        codes = [pw.code(holder) for holder in holders]
        start = threading.Barrier(HOLDERS)

        def pay(code: str):  # noqa: ANN202
            start.wait()
            return client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES, "account": {"use": True}},
                               headers={**his(pw), **key()})

        with ThreadPoolExecutor(HOLDERS) as pool:
            answers = [f.result() for f in [pool.submit(pay, code) for code in codes]]
    failed = [(r.status_code, r.text[:300]) for r in answers if r.status_code != 200 or r.json()["status"] != po.COMPLETED]
    assert failed == [], failed
    assert conflicts == []
    after = pw.balances()  # asserts the ledger sums to zero, nothing left pending
    assert after["pending"] == 0
    cash = sum(int(r.json()["cash"]["amount"].replace(".", "")) for r in answers)
    assert after["hospital_cash"] - before["hospital_cash"] == cash
    # The sandbox's notifications of these 32 payments are sent now, not while the next test's payments wait on the
    # same process (a test with a 1 s connector timeout saw its payment come back unknown).
    asyncio.run(wxpay.flush())
