"""One global lock order (docs/architecture.md, Storage): concurrent cancels and refunds of one holder's
settlements end without a 500 and leave the books balanced, on SQLite and PostgreSQL.

On PostgreSQL a refund took the region's audit head and then the person's accumulator row, a cancel the
other way round: 25 of them at once ended in 13 deadlocks that 8 retries did not absorb (500s)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.support.api import his, key, open_visit
from tests.support.payments import LINES, payment_world
from tests.support.presence import present
from yibao.app import create_app
from yibao.domain.bill import Accumulators
from yibao.services.books import accumulators

CANCELS, REFUNDS = 13, 12


def test_concurrent_cancels_and_refunds_of_one_holder_end_without_a_500_and_balanced(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, balance=900000, limit=50000)
    holder = pw.w.employee
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:
        before = pw.balances()
        settled = []
        for _ in range(CANCELS):
            visit_id = open_visit(client, pw.w, holder)
            present(db, pw.w.hospital, holder.id, visit_id)  # the holder presented a credential for the visit (issue 11: presence)
            r = client.post(f"/api/v1/his/visits/{visit_id}/settle", json={"account": {"use": True}}, headers={**his(pw), **key()})
            assert r.status_code == 200, r.text
            settled.append(r.json()["setl_id"])
        paid = []
        for _ in range(REFUNDS):
            r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                            headers={**his(pw), **key()})
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
            paid.append(r.json()["payment_id"])
        assert pw.balances()["holder"] < before["holder"]

        start = threading.Barrier(CANCELS + REFUNDS)

        def cancel(setl_id: str):  # noqa: ANN202
            start.wait()
            return client.post(f"/api/v1/his/settlements/{setl_id}/cancel", headers={**his(pw), **key()})

        def refund(payment_id: str):  # noqa: ANN202
            start.wait()
            return client.post(f"/api/v1/his/payments/{payment_id}/refunds", json={"scope": "all"}, headers={**his(pw), **key()})

        with ThreadPoolExecutor(CANCELS + REFUNDS) as pool:
            futures = [pool.submit(cancel, s) for s in settled] + [pool.submit(refund, p) for p in paid]
            answers = [f.result() for f in futures]
    failed = [(r.status_code, r.text[:300]) for r in answers if r.status_code != 200]
    assert failed == [], failed
    after = pw.balances()  # asserts the ledger sums to zero
    assert (after["holder"], after["pool"], after["receivable"], after["pending"]) == \
        (before["holder"], before["pool"], before["receivable"], 0)
    year = db.clock().year
    assert db.run(lambda c: accumulators.read(c, holder.id, year), write=False) == Accumulators()
