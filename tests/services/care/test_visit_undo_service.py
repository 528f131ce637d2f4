"""Undoing visits through the services, on SQLite and PostgreSQL (the national interface's 2202, 2404, 2405): a
registration or admission is cancelled only while nothing stands on it; an undone admission gives its number back
only when it was the year's latest; a discharge is undone only before settlement."""

from __future__ import annotations

import pytest

from tests.support.settlement import open_with_lines, settle
from tests.support.world import seed
from yibao.domain.errors import Conflict
from yibao.services.books import accumulators
from yibao.services.care import settlement, visits


def test_cancel_and_undo_follow_the_visits_state(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    v = open_with_lines(db, w.hospital, w.employee.id)
    with pytest.raises(Conflict) as exc:
        db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=v.id))
    assert exc.value.code == "visit_has_lines"
    for line in db.run(lambda c: visits.list_lines(c, w.hospital.id, v.id), write=False):
        db.run(lambda c, sn=line["feedetl_sn"]: visits.revoke_line(c, institution=w.hospital, visit_id=v.id, feedetl_sn=sn))
    assert db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=v.id)).status == "cancelled"
    assert db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=v.id)).status == "cancelled"  # again: nothing

    stay = open_with_lines(db, w.hospital, w.retiree.id, kind="inpatient")
    with pytest.raises(Conflict):
        db.run(lambda c: visits.undo_discharge(c, now, institution=w.hospital, visit_id=v.id))  # not an inpatient stay
    db.run(lambda c: visits.discharge(c, now, institution=w.hospital, visit_id=stay.id))
    doc = settle(db, w.hospital, stay.id, "UNDO-1", use=False)
    with pytest.raises(Conflict) as exc:
        db.run(lambda c: visits.undo_discharge(c, now, institution=w.hospital, visit_id=stay.id))
    assert exc.value.code == "visit_settled"
    db.run(lambda c: settlement.cancel(c, now, institution=w.hospital, setl_id=doc["setl_id"], actor="test"))
    assert db.run(lambda c: visits.undo_discharge(c, now, institution=w.hospital, visit_id=stay.id)).status == "admitted"


def test_an_undone_admission_gives_its_number_back_and_later_stays_move_down(db, keyring):
    # A review finding: a HIS's 2401 applied twice (the first answer lost) and the first reversed left the real stay
    # numbered 2 — priced with the repeat-admission deductible (Shenzhen: half) although it is the year's first.
    w = seed(db, keyring)
    now = db.clock()
    year = now.year

    def admit():
        return db.run(lambda c: visits.open_visit(c, now, institution=w.hospital, person_id=w.retiree.id, kind="inpatient"))

    def admissions():
        return db.run(lambda c: accumulators.lock(c, w.retiree.region, w.retiree.id, year)[1])

    def number(v):
        return db.run(lambda c: visits.get(c, w.hospital.id, v.id), write=False).admission_number

    first, second = admit(), admit()
    assert (first.admission_number, second.admission_number, admissions()) == (1, 2, 2)
    db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=first.id))
    assert (admissions(), number(second)) == (1, 1)  # the stay that stands is the year's first
    third = admit()
    assert third.admission_number == 2
    db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=third.id))
    db.run(lambda c: visits.cancel_visit(c, now, institution=w.hospital, visit_id=second.id))
    assert admissions() == 0 and admit().admission_number == 1
