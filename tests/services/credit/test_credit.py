"""Credit payment through the services, against the SANDBOX bank over loopback HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support.credit import BANK, advance, balanced, credit_world, relative, run
from tests.support.sms import texts_to
from yibao.channels.bank import transformers as tx
from yibao.domain import credit as rules_
from yibao.domain.credit import BankOutcomeUnknown, CreditError
from yibao.domain.errors import Conflict, Forbidden, NotFound
from yibao.domain.ledger import institution_cash
from yibao.sandbox.channels.bank import limit_for, score_of
from yibao.services.books import audit, ledger
from yibao.services.credit import enrolment as credit_enrolment
from yibao.services.credit import jobs as credit_jobs
from yibao.services.credit import lines as credit
from yibao.services.credit import repayments as credit_repayments
from yibao.services.credit import reservations as credit_reservations
from yibao.services.credit import sync as credit_sync
from yibao.store.tables import credit_enrolments, credit_reminders


@pytest.fixture
def cw(db, keyring, clock, bank, sms_gateway):
    return credit_world(db, keyring, clock, bank, sms=sms_gateway)


def order() -> str:
    return "ORD" + secrets.token_hex(8).upper()


def line(db, cw) -> dict:
    return db.run(lambda c: credit.overview(c, cw.holder, db.clock()), write=False)["lines"][0]


def reserve(cw, amount, ref=None, institution=None):
    return run(credit_reservations.reserve(cw.ctx, order_ref=ref or order(), holder_id=cw.holder, institution_id=institution or cw.world.hospital.id,
                              amount=amount, actor="test"))


def paid(cw, amount):
    """A payment completed by credit: reserved, then captured (the bank paid the hospital)."""
    r = reserve(cw, amount)
    return run(credit_reservations.capture(cw.ctx, r.order_ref, actor="test"))


def repay(cw, payer, bill_no, amount, rid=None):
    return run(credit_repayments.repay(cw.ctx, payer_id=payer, bill_no=bill_no, amount=amount, repayment_id=rid, actor="test"))


# ---- enrolment --------------------------------------------------------------------------------

def test_enrolment_records_the_consent_and_the_bank_grants_a_line(db, keyring, cw):
    view = cw.enrol()
    token = credit.token_for(keyring, cw.holder, BANK)
    assert view["status"] == "active" and view["score"] == score_of(token)
    limit = min(limit_for(score_of(token)), 3000_00)  # the bank's line, capped by Shenzhen's max_line
    assert (view["limit"], view["used"], view["available"]) == (f"{limit / 100:.2f}", "0.00", f"{limit / 100:.2f}")
    row = db.run(lambda c: c.execute(select(credit_enrolments)).one(), write=False)
    assert (row.consent_version, row.bank_limit, row.limit_fen) == (rules_.CONSENT_VERSION, limit_for(score_of(token)), limit)
    assert row.consent_accepted_at is not None
    # the ledger mirrors the line: the limit sits on a no-overdraft account
    assert db.run(lambda c: ledger.available(c, rules_.line_account(row.id)), write=False) == limit
    assert balanced(db)
    actions = [e.action for e in db.run(lambda c: audit.entries(c, "440300"), write=False)]
    assert "credit.consent" in actions and "credit.enrol" in actions
    with pytest.raises(Conflict) as exc:
        cw.enrol()
    assert exc.value.code == "already_enrolled"


def test_enrolment_refuses_without_consent_or_binding_naming_each_condition(db, keyring, cw):
    with pytest.raises(Forbidden) as exc:
        run(credit_enrolment.enrol(cw.ctx, holder_id=cw.holder, pi_id=BANK, consent_version="old-terms", actor="test"))
    assert (exc.value.code, exc.value.field) == ("credit_not_eligible", "consent_given")
    with pytest.raises(Forbidden) as exc:  # the resident has no e-card, let alone one bound to the bank
        run(credit_enrolment.enrol(cw.ctx, holder_id=cw.world.resident.id, pi_id=BANK, consent_version=rules_.CONSENT_VERSION, actor="test"))
    assert exc.value.field == "ecard_bound"
    with pytest.raises(NotFound) as exc:
        run(credit_enrolment.enrol(cw.ctx, holder_id=cw.holder, pi_id="nobank", consent_version=rules_.CONSENT_VERSION, actor="test"))
    assert exc.value.code == "bank_not_connected"
    assert db.run(lambda c: c.execute(select(func.count()).select_from(credit_enrolments)).scalar_one(), write=False) == 0


# ---- reserve / capture / release ---------------------------------------------------------------

def test_reserve_capture_release_keep_the_ledger_balanced_and_the_line_right(db, cw):
    cw.enrol()
    limit = db.run(lambda c: credit.holder_enrolment(c, cw.holder).limit_fen, write=False)
    a = reserve(cw, 300_00)
    b = reserve(cw, 200_00)
    assert (a.state, b.state) == ("reserved", "reserved")
    view = line(db, cw)
    assert view["used"] == "500.00" and view["available"] == f"{(limit - 500_00) / 100:.2f}"
    assert balanced(db)
    cash = institution_cash(cw.world.hospital.id)
    assert db.run(lambda c: ledger.balance(c, cash), write=False) == 0  # held, not yet paid

    done = run(credit_reservations.capture(cw.ctx, a.order_ref, actor="test"))
    assert done.state == "captured" and done.bill_no is not None
    gone = run(credit_reservations.release(cw.ctx, b.order_ref, actor="test"))
    assert gone.state == "released"
    view = line(db, cw)
    assert view["used"] == "300.00" and view["available"] == f"{(limit - 300_00) / 100:.2f}"
    assert db.run(lambda c: ledger.balance(c, cash), write=False) == 300_00  # the bank paid the hospital
    assert balanced(db)
    bank_line = run(cw.bank.channel.credit_line(done.enrolment_id))
    assert (bank_line.used_fen, [x.bill_no for x in bank_line.bills]) == (300_00, [done.bill_no])
    # both calls again: the same outcome, nothing moves twice
    assert run(credit_reservations.capture(cw.ctx, a.order_ref, actor="test")).state == "captured"
    assert run(credit_reservations.release(cw.ctx, b.order_ref, actor="test")).state == "released"
    with pytest.raises(Conflict):
        run(credit_reservations.release(cw.ctx, a.order_ref, actor="test"))
    assert db.run(lambda c: ledger.balance(c, cash), write=False) == 300_00 and balanced(db)


def test_a_reservation_above_the_available_line_is_refused_with_its_own_error(db, cw):
    cw.enrol()
    limit = db.run(lambda c: credit.holder_enrolment(c, cw.holder).limit_fen, write=False)
    reserve(cw, limit - 100_00)
    with pytest.raises(CreditError) as exc:
        reserve(cw, 100_01)
    assert (exc.value.code, exc.value.field) == ("credit_line_exceeded", "amount")
    assert "100.00" in exc.value.message_zh and "available ¥100.00" in exc.value.message_en
    assert reserve(cw, 100_00).state == "reserved"  # exactly the rest is fine
    assert line(db, cw)["available"] == "0.00" and balanced(db)


def test_an_order_number_is_one_reservation(db, cw):
    cw.enrol()
    ref = order()
    first = reserve(cw, 50_00, ref)
    assert reserve(cw, 50_00, ref) == first
    with pytest.raises(Conflict) as exc:
        reserve(cw, 60_00, ref)
    assert exc.value.code == "order_ref_reused"
    assert line(db, cw)["used"] == "50.00"


def test_a_holder_without_credit_cannot_reserve(db, cw):
    with pytest.raises(Conflict) as exc:
        reserve(cw, 10_00)
    assert exc.value.code == "credit_not_enrolled"


# ---- bills and repayment ------------------------------------------------------------------------

def test_a_bill_is_due_after_the_regions_interest_free_days(db, cw):
    cw.enrol()
    done = paid(cw, 120_00)
    [bill] = line(db, cw)["bills"]
    today = credit.beijing_day(db.clock())
    assert bill["bill_no"] == done.bill_no and bill["amount"] == "120.00" and bill["status"] == "open"
    assert bill["paid_on"] == today.isoformat()
    assert bill["due_date"] == (today + timedelta(days=30)).isoformat()  # Shenzhen: interest_free_days 30 [G]
    [at_bank] = run(cw.bank.channel.credit_line(done.enrolment_id)).bills
    assert at_bank.due_date.isoformat() == bill["due_date"]  # the bank's contract agrees


def test_the_holder_repays_in_part_then_in_full(db, cw):
    cw.enrol()
    done = paid(cw, 200_00)
    part = repay(cw, cw.holder, done.bill_no, 80_00)
    assert (part["state"], part["bill"]["repaid"], part["bill"]["outstanding"], part["bill"]["status"]) == ("succeeded", "80.00", "120.00", "open")
    assert line(db, cw)["used"] == "120.00"
    with pytest.raises(CreditError) as exc:
        repay(cw, cw.holder, done.bill_no, 120_01)
    assert exc.value.code == "repayment_exceeds_outstanding"
    full = repay(cw, cw.holder, done.bill_no, 120_00)
    assert (full["bill"]["outstanding"], full["bill"]["status"]) == ("0.00", "repaid")
    assert line(db, cw)["used"] == "0.00" and balanced(db)
    [at_bank] = run(cw.bank.channel.credit_line(done.enrolment_id)).bills
    assert (at_bank.repaid_fen, at_bank.status) == (200_00, "repaid")


def test_a_linked_relative_may_repay_and_a_stranger_may_not(db, keyring, cw):
    cw.enrol()
    done = paid(cw, 90_00)
    kin = relative(db, keyring, cw)
    listed = db.run(lambda c: credit.family_bills(c, keyring, kin.id, db.clock()), write=False)["items"]
    assert [(b["bill_no"], b["relation"]) for b in listed] == [(done.bill_no, "child")]
    assert listed[0]["name"] != "测试1"  # masked
    got = repay(cw, kin.id, done.bill_no, 90_00)
    assert (got["payer_psn_no"], got["bill"]["status"]) == (kin.id, "repaid")
    with pytest.raises(Forbidden) as exc:
        repay(cw, cw.world.retiree.id, paid(cw, 10_00).bill_no, 10_00)
    assert (exc.value.code, exc.value.field) == ("not_family", "payer")
    assert db.run(lambda c: credit.family_bills(c, keyring, cw.world.retiree.id, db.clock()), write=False)["items"] == []
    assert balanced(db)


def test_a_repayment_number_is_one_repayment(db, cw):
    cw.enrol()
    done = paid(cw, 100_00)
    rid = order()  # the sandbox bank lives for the whole session: numbers are fresh per test
    first = repay(cw, cw.holder, done.bill_no, 40_00, rid=rid)
    again = repay(cw, cw.holder, done.bill_no, 40_00, rid=rid)
    assert first == again and again["bill"]["repaid"] == "40.00"
    with pytest.raises(Conflict):
        repay(cw, cw.holder, done.bill_no, 50_00, rid=rid)


def test_a_lost_bank_answer_on_repay_leaves_it_unknown_until_the_query_resolves_it(db, cw, caplog):
    cw.enrol()
    done = paid(cw, 150_00)
    rid = order()
    run(cw.bank.knobs(cut_answer_rate=1.0))  # booked at the bank, the answer lost
    with pytest.raises(BankOutcomeUnknown) as exc:
        repay(cw, cw.holder, done.bill_no, 150_00, rid=rid)
    assert exc.value.code == "bank_outcome_unknown"
    assert exc.value.__cause__.code == "unreachable"  # the channel's own error is kept: a log or a failed test says which
    assert any(r.name == "yibao.credit" and rid in r.getMessage() and "unreachable" in r.getMessage() for r in caplog.records)
    state = db.run(lambda c: credit_repayments.repayment_view(c, rid, db.clock()), write=False)
    assert (state["state"], state["bill"]["repaid"]) == ("unknown", "0.00")
    run(cw.bank.knobs(cut_answer_rate=0.0))
    resolved = run(credit_repayments.resolve_repayment(cw.ctx, rid, actor="test"))
    assert (resolved["state"], resolved["bill"]["repaid"], resolved["bill"]["status"]) == ("succeeded", "150.00", "repaid")
    assert run(cw.bank.channel.credit_line(done.enrolment_id)).bills[0].repaid_fen == 150_00  # once, not twice
    assert line(db, cw)["used"] == "0.00" and balanced(db)


# ---- overdue, reminders --------------------------------------------------------------------------

def test_overdue_suspends_the_line_and_full_repayment_restores_it(db, cw, clock):
    cw.enrol()
    done = paid(cw, 100_00)
    advance(clock, cw.bank, 33)  # due + 3 grace days: not yet
    assert run(credit_jobs.run_overdue(cw.ctx))["suspended"] == 0
    advance(clock, cw.bank, 1)
    report = run(credit_jobs.run_overdue(cw.ctx))
    assert report["suspended"] == 1 and report["past_due"] == "100.00"  # what the lines checked owe past due, in yuan
    view = line(db, cw)
    assert (view["status"], view["suspended"], view["overdue"], view["available"]) == ("suspended", True, True, "0.00")
    with pytest.raises(CreditError) as exc:
        reserve(cw, 10_00)
    assert (exc.value.code, exc.value.field) == ("credit_line_suspended", "credit_line")
    assert "逾期" in exc.value.message_zh and "overdue" in exc.value.message_en
    repay(cw, cw.holder, done.bill_no, 40_00)
    assert line(db, cw)["status"] == "suspended"  # a partial repayment does not restore it
    repay(cw, cw.holder, done.bill_no, 60_00)
    assert line(db, cw)["status"] == "active"
    assert reserve(cw, 10_00).state == "reserved"
    assert balanced(db)


def test_reminders_are_recorded_once_per_bill_and_kind(db, cw, clock):
    cw.enrol()
    done = paid(cw, 66_00)
    assert run(credit_jobs.run_reminders(cw.ctx))["sent"] == 0  # 30 days ahead: nothing yet
    advance(clock, cw.bank, 27)  # 3 days before the due date
    assert run(credit_jobs.run_reminders(cw.ctx))["by_kind"] == {"d-3": 1}
    assert run(credit_jobs.run_reminders(cw.ctx))["sent"] == 0  # twice on one day: once
    advance(clock, cw.bank, 3)
    report = run(credit_jobs.run_reminders(cw.ctx))
    assert (report["by_kind"], report["amounts"], report["texted"]) == ({"d0": 1}, {"d0": "66.00"}, 1)
    assert run(credit_jobs.run_reminders(cw.ctx))["sent"] == 0
    rows = db.run(lambda c: c.execute(select(credit_reminders).order_by(credit_reminders.c.created_at)).all(), write=False)
    assert [(r.bill_no, r.kind) for r in rows] == [(done.bill_no, "d-3"), (done.bill_no, "d0")]
    texts = texts_to(cw.ctx.sms.base_url, cw.world.phones["employee"])  # what the (sandbox) SMS gateway sent
    assert len(texts) == 2 and all(done.bill_no in t and "66.00" in t for t in texts)
    repay(cw, cw.holder, done.bill_no, 66_00)
    advance(clock, cw.bank, 1)
    assert run(credit_jobs.run_reminders(cw.ctx))["sent"] == 0  # repaid: no overdue notice


# ---- bank notifications -------------------------------------------------------------------------

def _signed(secret: bytes, merchant: str, payload: dict, *, tamper: bool = False) -> tuple[dict, bytes]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    ts, nonce = str(int(__import__("time").time())), secrets.token_hex(8)
    sig = tx.notify_signature(secret, ts, nonce, body)
    if tamper:
        body = body.replace(b'"repaid"', b'"open"', 1)
    return {"X-Bank-Merchant": merchant, "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce, "X-Bank-Signature": sig}, body


def test_a_bank_notification_is_verified_then_the_line_is_queried_and_applied_once(db, cw):
    cw.enrol()
    done = paid(cw, 70_00)
    enrolment = db.run(lambda c: credit.holder_enrolment(c, cw.holder), write=False)
    # the holder's family repays at the bank's own counter; the bank tells us
    token = credit.token_for(cw.ctx.keyring, cw.holder, BANK)
    bill = run(cw.bank.channel.repay(done.bill_no, order(), 70_00, token))
    cfg = cw.bank.channel.config
    data = {"bill_no": bill.bill_no, "out_trade_no": done.order_ref, "agreement_no": enrolment.agreement_no, "amount": "70.00",
            "refunded": "0.00", "repaid": "70.00", "outstanding": "0.00", "due_date": bill.due_date.isoformat(), "status": "repaid"}
    payload = {"event_id": "EV1", "event": "bill.repaid", "data": data}

    headers, body = _signed(cfg.secret, cfg.merchant_id, payload, tamper=True)
    ack, what = run(credit_sync.apply_bank_notification(cw.ctx, BANK, headers, body))
    assert (ack.status_code, what) == (401, "refused")
    assert line(db, cw)["bills"][0]["repaid"] == "0.00"  # nothing trusted

    headers, body = _signed(cfg.secret, cfg.merchant_id, payload)
    ack, what = run(credit_sync.apply_bank_notification(cw.ctx, BANK, headers, body))
    assert (ack.status_code, what) == (200, "applied")
    view = line(db, cw)
    assert (view["bills"][0]["repaid"], view["bills"][0]["status"], view["used"]) == ("70.00", "repaid", "0.00")
    headers, body = _signed(cfg.secret, cfg.merchant_id, {**payload, "event_id": "EV1-resent"})
    assert run(credit_sync.apply_bank_notification(cw.ctx, BANK, headers, body)) == (ack, "duplicate")
    assert line(db, cw)["bills"][0]["repaid"] == "70.00" and balanced(db)


def test_the_banks_own_refusal_is_committed_with_the_hold_released_then_raised(db, cw, clock):
    cw.enrol()
    paid(cw, 100_00)
    advance(clock, cw.bank, 31)  # past the bank's due date (it suspends at once), within our grace
    ref = order()
    with pytest.raises(CreditError) as exc:
        reserve(cw, 10_00, ref)
    assert (exc.value.code, exc.value.field) == ("credit_line_suspended", "credit_line")
    r = db.run(lambda c: credit_reservations.reservation(c, ref), write=False)
    assert (r.state, r.error_code) == ("failed", "LINE_SUSPENDED_OVERDUE")  # the trace stays
    assert line(db, cw)["used"] == "100.00" and balanced(db)  # the hold was given back


def test_a_reservation_whose_answer_was_lost_is_resolved_by_asking_the_bank(db, cw):
    cw.enrol()
    ref = order()
    run(cw.bank.knobs(cut_answer_rate=1.0))
    with pytest.raises(BankOutcomeUnknown):
        reserve(cw, 40_00, ref)
    run(cw.bank.knobs(cut_answer_rate=0.0))
    assert db.run(lambda c: credit_reservations.reservation(c, ref), write=False).state == "unknown"
    assert line(db, cw)["used"] == "40.00"  # still held while unknown
    assert run(credit_reservations.resolve(cw.ctx, ref, actor="test")).state == "reserved"
    done = run(credit_reservations.capture(cw.ctx, ref, actor="test"))
    assert done.state == "captured" and done.bill_no is not None and balanced(db)
