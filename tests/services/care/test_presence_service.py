"""Presence through the services, on SQLite and PostgreSQL: a presented credential lives briefly and is used once,
even by two settlements racing for it."""

from __future__ import annotations

import threading

import pytest

from tests.support.presence import present
from tests.support.settlement import balance, open_with_lines
from tests.support.world import seed
from yibao.domain.errors import Forbidden
from yibao.services.care import settlement
from yibao.services.care.settlement import AccountRequest


def _settle(db, inst, visit_id, msgid):  # noqa: ANN001, ANN202 — no presence of its own: what was presented before is used
    return db.run(lambda c: settlement.settle(c, db.clock(), institution=inst, visit_id=visit_id, msgid=msgid,
                                              account=AccountRequest(use=True), actor="test"))


def test_a_presence_past_its_life_pays_nothing(db, keyring, clock):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    present(db, w.hospital, w.employee.id, v.id)
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(Forbidden) as exc:
        _settle(db, w.hospital, v.id, "LATE-1")
    assert exc.value.code == "presence_required"
    assert balance(db, w.employee.id) == 300000


def test_two_settlements_racing_for_one_presence_one_wins(db, keyring):
    w = seed(db, keyring)
    visit_ids = [open_with_lines(db, w.hospital, w.employee.id).id for _ in range(2)]
    present(db, w.hospital, w.employee.id)  # presented for no visit yet: either may use it, not both
    results, refusals = [], []

    def run(i: int) -> None:
        try:
            results.append(_settle(db, w.hospital, visit_ids[i], f"RACE-{i}"))
        except Forbidden as exc:
            refusals.append(exc.code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1 and refusals == ["presence_required"]
    assert balance(db, w.employee.id) == 300000 - int(results[0]["acct_pay"].replace(".", ""))


def test_someone_elses_presence_pays_nothing_from_this_account(db, keyring):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    present(db, w.hospital, w.retiree.id, v.id)  # someone else read their own card for this visit
    with pytest.raises(Forbidden):
        _settle(db, w.hospital, v.id, "OTHER-1")
    assert balance(db, w.employee.id) == 300000


def test_the_years_totals_are_shown_only_with_the_person_present_for_the_visit(db, keyring, clock):
    """settlement.year_totals (FSI 5206): the deductible used and the funds' totals are the person's health history —
    like the balance, not for the counter before the person has presented a credential for this visit."""
    w = seed(db, keyring)
    visit_id = open_with_lines(db, w.hospital, w.employee.id).id
    other = open_with_lines(db, w.hospital, w.employee.id).id

    def totals(vid: str):  # noqa: ANN202
        return db.run(lambda c: settlement.year_totals(c, clock(), institution=w.hospital, visit_id=vid), write=False)

    with pytest.raises(Forbidden) as refused:
        totals(visit_id)
    assert refused.value.code == "presence_required"
    present(db, w.hospital, w.employee.id, other)  # presented for another visit: not for this one
    with pytest.raises(Forbidden):
        totals(visit_id)
    present(db, w.hospital, w.employee.id, visit_id)
    assert totals(visit_id).pool_fund_paid == 0


def test_the_presence_a_unit_bound_is_the_one_its_settlement_uses_and_another_owners_is_never(db, keyring, clock):
    from datetime import timedelta

    from yibao.services.care import presence

    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    older = present(db, w.hospital, w.employee.id, v.id)  # presented at the counter before, for this visit
    now = db.clock()

    def unit(c, owner, msgid):  # noqa: ANN001, ANN202 — a flow that records a presence, binds it and settles in one unit
        p = presence.record(c, now, kind="card_pin", credential_id=f"card-{msgid}", institution=w.hospital, person_id=owner.id,
                            owner_id=owner.id, ttl=timedelta(minutes=5))
        presence.bind(c, now, p, visit_id=v.id, field="card_no")
        doc = settlement.settle(c, now, institution=w.hospital, visit_id=v.id, msgid=msgid, account=AccountRequest(use=True), actor="test")
        return p.id, doc

    # the retiree's bound presence cannot pay the employee's account: the search finds the employee's older one instead
    bound, doc = db.run(lambda c: unit(c, w.retiree, "BOUND-OTHER"))
    used = db.run(lambda c: {r.id: r.status for r in presence.live_for_visit(c, now, institution_id=w.hospital.id, visit_id=v.id,
                                                                             person_id=w.employee.id)}, write=False)
    assert bound in used and older not in used  # the retiree's stays live; the older one paid
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=doc["setl_id"], actor="test"))
    # the employee's own, bound in the unit, is used — not an older one of theirs for the visit, nor the retiree's
    older_again = present(db, w.hospital, w.employee.id, v.id)
    clock.advance(seconds=1)  # the older one first in the search's order
    now = db.clock()
    mine, _ = db.run(lambda c: unit(c, w.employee, "BOUND-MINE"))
    live = db.run(lambda c: [r.id for r in presence.live_for_visit(c, now, institution_id=w.hospital.id, visit_id=v.id,
                                                                  person_id=w.employee.id)], write=False)
    assert mine not in live and older_again in live and bound in live
