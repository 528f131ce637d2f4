"""What the holder's credit page reads through services/credit.py: the conditions before enrolment and the
banks to choose, the line's used amount as held + owed, the hospital of each bill, and repayments whose bank
answer is not known yet (who may have them asked about). SANDBOX bank over loopback HTTP, both databases."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from tests.support.credit import BANK, credit_world, relative, run
from yibao.domain.credit import BankOutcomeUnknown
from yibao.domain.errors import Conflict, NotFound
from yibao.services.credit import lines as credit
from yibao.services.credit import repayments as credit_repayments
from yibao.services.credit import reservations as credit_reservations


@pytest.fixture
def cw(db, keyring, clock, bank):
    return credit_world(db, keyring, clock, bank)


def eligibility(db, person_id: str, connected=(BANK,)) -> dict:
    return db.run(lambda c: credit.eligibility(c, person_id, db.clock(), set(connected)), write=False)


def met(view: dict) -> dict[str, bool | None]:
    return {c["code"]: c["met"] for c in view["conditions"]}


def paid(cw, amount: int):
    r = run(credit_reservations.reserve(cw.ctx, order_ref="ORD" + secrets.token_hex(8).upper(), holder_id=cw.holder,
                           institution_id=cw.world.hospital.id, amount=amount, actor="test"))
    return run(credit_reservations.capture(cw.ctx, r.order_ref, actor="test"))


def test_eligibility_names_each_condition_and_offers_the_bound_connected_banks(db, cw):
    view = eligibility(db, cw.holder)
    assert met(view) == {"adult": True, "insured_active": True, "consent_given": None, "ecard_bound": True}
    assert view["eligible"] and [b["payment_institution_id"] for b in view["banks"]] == [BANK] and view["unbound_banks"] == []
    assert (view["max_line"], view["interest_free_days"]) == ("3000.00", 30)  # Shenzhen's rules
    # A bank the platform has no connection to is not offered: the e-card condition then fails.
    assert met(eligibility(db, cw.holder, connected=()))["ecard_bound"] is False
    # Without an e-card bound to the bank: named, and the bank shown as one to bind first.
    other = eligibility(db, cw.world.resident.id)
    assert met(other)["ecard_bound"] is False and not other["eligible"]
    assert other["banks"] == [] and [b["payment_institution_id"] for b in other["unbound_banks"]] == [BANK]
    cw.enrol()
    assert eligibility(db, cw.holder)["banks"] == []  # enrolled there already: nothing left to choose


def test_a_region_without_credit_payment_says_so(db, cw, monkeypatch):
    original = credit.policy_for
    monkeypatch.setattr(credit, "policy_for", lambda region, year: replace(original(region, year), credit=None))
    with pytest.raises(Conflict) as exc:
        eligibility(db, cw.holder)
    assert exc.value.code == "credit_not_offered"


def test_the_line_splits_used_into_held_and_owed_and_bills_name_their_hospital(db, cw):
    cw.enrol()
    done = paid(cw, 120_00)
    run(credit_reservations.reserve(cw.ctx, order_ref="ORD" + secrets.token_hex(8).upper(), holder_id=cw.holder, institution_id=cw.world.hospital.id,
                       amount=30_00, actor="test"))  # a payment still in progress
    line = db.run(lambda c: credit.overview(c, cw.holder, db.clock()), write=False)["lines"][0]
    assert (line["used"], line["held"], line["owed"]) == ("150.00", "30.00", "120.00")
    names = db.run(lambda c: credit.bill_hospitals(c, [done.order_ref, "NOSUCHORDER1"]), write=False)
    assert names == {done.order_ref: cw.world.hospital.name}
    assert db.run(lambda c: credit.bill_hospitals(c, []), write=False) == {}


def test_a_repayment_in_doubt_is_listed_until_resolved_and_only_its_parties_may_ask(db, keyring, cw):
    cw.enrol()
    done = paid(cw, 50_00)
    kin = relative(db, keyring, cw)
    rid = "RP" + secrets.token_hex(8).upper()
    run(cw.bank.knobs(server_error_rate=1.0))  # the bank answers 5xx: no definite answer
    try:
        with pytest.raises(BankOutcomeUnknown):
            run(credit_repayments.repay(cw.ctx, payer_id=kin.id, bill_no=done.bill_no, amount=20_00, repayment_id=rid, actor="test"))
    finally:
        run(cw.bank.knobs(server_error_rate=0.0))
    doubt = db.run(lambda c: credit_repayments.repayments_in_doubt(c, [done.bill_no]), write=False)
    assert [(r["repayment_no"], r["amount"], r["state"], r["payer_psn_no"]) for r in doubt[done.bill_no]] == [(rid, "20.00", "unknown", kin.id)]
    for person in (kin.id, cw.holder):  # the payer and the holder whose bill it is
        db.run(lambda c, p=person: credit_repayments.require_repayment_party(c, rid, p), write=False)
    with pytest.raises(NotFound):
        db.run(lambda c: credit_repayments.require_repayment_party(c, rid, cw.world.retiree.id), write=False)
    with pytest.raises(NotFound):
        db.run(lambda c: credit_repayments.require_repayment_party(c, "RPNOSUCH", cw.holder), write=False)
    assert run(credit_repayments.resolve_repayment(cw.ctx, rid, actor="test"))["state"] == "succeeded"
    assert db.run(lambda c: credit_repayments.repayments_in_doubt(c, [done.bill_no]), write=False) == {}
