"""Credit as the cash source of a payment, over HTTP on SQLite and PostgreSQL, with the SANDBOX bank on loopback: the cash
is reserved on the payer's credit line (never Channel.pay), captured on completion — a bill appears on the line — and a
refused payment is voided with the line's hold released."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.support.api import login
from tests.support.credit import BANK, balanced, credit_world
from tests.support.payments import LINES
from yibao.app import create_app
from yibao.domain import credit as rules_
from yibao.domain.ledger import institution_cash, person_account
from yibao.services import Context
from yibao.services.books import ledger
from yibao.services.credit import lines as credit
from yibao.services.credit import reservations as credit_reservations
from yibao.services.payments import paycodes, recovery
from yibao.services.people import bindings


@pytest.fixture
def setup(db, keyring, clock, bank, sms_gateway):
    cw = credit_world(db, keyring, clock, bank)
    db.run(lambda c: bindings.set_limit(c, db.clock(), holder_id=cw.holder, pi_id=BANK, password_free_limit=100000, actor="test"))
    cw.enrol()
    app = create_app(db, keyring=keyring, demo=True, sms_gateway=sms_gateway)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield cw, client


def _pay(db, keyring, cw, client, **extra):  # noqa: ANN001, ANN202
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=cw.holder, person_id=None, actor="test")).code
    return client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES, "account": {"use": False}, **extra},
                       headers={"Authorization": f"Bearer {cw.world.hospital_credential}", "Idempotency-Key": uuid.uuid4().hex})


def _books(db, cw) -> dict[str, int]:  # noqa: ANN001
    def read(c):  # noqa: ANN001, ANN202
        enrolment = credit.holder_enrolment(c, cw.holder)
        return {"line_available": ledger.available(c, rules_.line_account(enrolment.id)),
                "holder": ledger.balance(c, person_account(cw.holder)), "holder_available": ledger.available(c, person_account(cw.holder)),
                "hospital_cash": ledger.balance(c, institution_cash(cw.world.hospital.id))}
    return db.run(read, write=False)


def test_a_credit_payment_completes_and_a_bill_appears_on_the_line(db, keyring, setup, bank):
    cw, client = setup
    before = _books(db, cw)
    calls_before = bank.runtime.books.calls
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["status"], doc["cash"]["amount"], doc["cash"]["payment_institution_id"]) == ("completed", "366.00", BANK)
    after = _books(db, cw)
    assert before["line_available"] - after["line_available"] == 366_00  # the cash came from the line
    assert after["hospital_cash"] - before["hospital_cash"] == 366_00  # once: the settlement carries no second cash leg
    assert before["holder"] == after["holder"]  # no account use asked
    reservation = db.run(lambda c: credit_reservations.reservation(c, doc["payment_id"]), write=False)
    assert reservation.state == "captured" and reservation.bill_no and reservation.amount == 366_00
    assert doc["cash"]["trade_no"] == reservation.bill_no
    holder = login(client, cw.world.phones["employee"])
    line = client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]
    assert [b["bill_no"] for b in line["bills"]] == [reservation.bill_no] and line["used"] == "366.00"
    assert bank.runtime.books.calls > calls_before and balanced(db)
    # the cash part of a credit payment is not refunded through a payment institution; the insurance part is
    refund = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "cash"},
                         headers={"Authorization": f"Bearer {cw.world.hospital_credential}", "Idempotency-Key": uuid.uuid4().hex})
    assert refund.status_code == 409 and refund.json()["error"]["code"] == "credit_refund_unsupported"


def test_a_refused_credit_payment_is_voided_and_the_line_released(db, keyring, setup, bank):
    cw, client = setup
    before = _books(db, cw)
    bank.runtime.set_knobs(error_rate=1.0)
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["void_reason"]) == ("voided", "declined")
    assert _books(db, cw) == before  # the line's hold, the account hold: all released
    reservation = db.run(lambda c: credit_reservations.reservation(c, r.json()["payment_id"]), write=False)
    assert reservation.state == "failed" and reservation.bill_no is None
    assert balanced(db)


def test_credit_without_an_enrolment_is_refused_naming_credit(db, keyring, setup):
    cw, client = setup
    db.run(lambda c: c.execute(credit.CE.update().values(status="closed")))
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert r.status_code == 409 and (r.json()["error"]["field"], r.json()["error"]["code"]) == ("credit", "credit_not_enrolled")


def test_recovery_asks_credit_resolve_for_a_credit_payment_in_doubt(db, keyring, setup, bank, clock):
    import asyncio


    cw, client = setup
    before = _books(db, cw)
    bank.runtime.set_knobs(server_error_rate=1.0)  # answered 5xx before anything happens at the bank
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert r.status_code == 202 and r.json()["status"] == "cash_unknown", r.text
    assert _books(db, cw)["line_available"] == before["line_available"] - 366_00  # still held on the line while in doubt
    bank.runtime.set_knobs(server_error_rate=0.0)
    ctx = Context.for_database(db, keyring)
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(ctx))
    assert report.orders == {r.json()["payment_id"]: "voided"}  # the bank never saw it: nothing was lent
    assert _books(db, cw) == before and balanced(db)
    assert db.run(lambda c: credit_reservations.reservation(c, r.json()["payment_id"]), write=False).state == "failed"


def _disconnect(db) -> None:  # noqa: ANN001
    from sqlalchemy import delete

    from yibao.store.tables import channel_configs

    db.run(lambda c: c.execute(delete(channel_configs).where(channel_configs.c.payment_institution_id == BANK)))


def test_a_credit_payment_to_a_bank_the_platform_does_not_reach_is_voided_and_holds_nothing(db, keyring, setup, bank):
    """The bank's connector configuration is gone: nothing is asked of the bank or held on the line — the payment
    is voided at once (not left in doubt for recovery that could never ask anyone)."""
    cw, client = setup
    before = _books(db, cw)
    _disconnect(db)
    calls = bank.runtime.books.calls
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert (r.status_code, r.json()["status"]) == (200, "voided"), r.text
    assert bank.runtime.books.calls == calls and _books(db, cw) == before and balanced(db)
    with pytest.raises(Exception, match="no credit reservation"):
        db.run(lambda c: credit_reservations.reservation(c, r.json()["payment_id"]), write=False)


def test_recovery_leaves_a_credit_payment_in_doubt_while_its_bank_cannot_be_asked(db, keyring, setup, bank, clock):
    """A reservation was made, the answer lost, then the bank's configuration removed: only the bank knows — the
    order stays in doubt (never voided on a guess) until the bank is reached again; then recovery ends it."""
    import asyncio

    from tests.support.credit import connect

    cw, client = setup
    before = _books(db, cw)
    bank.runtime.set_knobs(server_error_rate=1.0)
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert (r.status_code, r.json()["status"]) == (202, "cash_unknown"), r.text
    bank.runtime.set_knobs(server_error_rate=0.0)
    _disconnect(db)
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(Context.for_database(db, keyring)))
    assert report.orders == {r.json()["payment_id"]: "cash_unknown"}
    connect(db, keyring, BANK, bank.channel)
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(Context.for_database(db, keyring)))
    assert report.orders == {r.json()["payment_id"]: "voided"} and _books(db, cw) == before and balanced(db)


def test_the_banks_statement_reconciles_a_credit_payment(db, keyring, setup, bank, clock):
    """A credit line's cash is the bank's to state (docs/reconciliation.md): its statement's row matches the order's
    ``credit-hold`` leg. The bank's books are the session's, so only this payment is looked for among the differences."""
    import asyncio

    from yibao.domain.reconciliation import beijing_day
    from yibao.services.reconciliation import runs as recon

    cw, client = setup
    r = _pay(db, keyring, cw, client, pay_by="credit")
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    day = beijing_day(bank.runtime.books.trades[r.json()["payment_id"]].paid_at)
    clock.now = max(clock.now, datetime.combine(day + timedelta(days=1), time(1), timezone(timedelta(hours=8))))  # the day has ended
    done = asyncio.run(recon.reconcile(cw.ctx, day=day, pi_id=BANK, actor="operator:test"))
    assert r.json()["payment_id"] not in {x["key"] for x in done.differences}, done.differences
    assert done.run["matched"] >= 1 and done.run["platform"]["legs"] >= 1
