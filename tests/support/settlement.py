"""Settlement through the services for tests: a visit opened with fee lines, settled; a person's balance and accumulators."""

from __future__ import annotations

from tests.support.presence import present
from yibao.domain.ledger import person_account
from yibao.services.books import accumulators, ledger
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest

LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "300.00", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D0042"},
    {"feedetl_sn": "3", "medins_list_codg": "C900", "name": "保健品", "unit_price": "50.00", "quantity": "1"},
]


def open_with_lines(db, inst, person_id, kind="outpatient", lines=LINES):
    now = db.clock()
    v = db.run(lambda c: visits.open_visit(c, now, institution=inst, person_id=person_id, kind=kind))
    db.run(lambda c: visits.upload_lines(c, now, institution=inst, visit_id=v.id, items=lines))
    return v


def settle(db, inst, visit_id, msgid, use=True, **kw):
    """Settle the visit; with the account, its owner (the patient, or ``payer_person_id``) has presented a credential
    for it first (tests.support.presence.present): these tests are about what the settlement then does."""
    if use:
        owner = kw.get("payer_person_id") or db.run(lambda c: visits.get(c, inst.id, visit_id), write=False).person_id
        present(db, inst, owner, visit_id)
    return db.run(lambda c: settlement.settle(c, db.clock(), institution=inst, visit_id=visit_id, msgid=msgid,
                                              account=AccountRequest(use=use, **kw), actor="test"))


def balance(db, person_id):
    return db.run(lambda c: ledger.balance(c, person_account(person_id)), write=False)


def acc(db, person_id):
    return db.run(lambda c: accumulators.read(c, person_id, 2026), write=False)
