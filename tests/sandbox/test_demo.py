"""The demo world: loads once, and what it promises works (guardian paying for the child, the cross-region patient)."""

from __future__ import annotations

import io

from yibao.domain.ledger import person_account
from yibao.sandbox import demo
from yibao.services.agency import institutions
from yibao.services.books import ledger
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import paycodes
from yibao.services.people import families


def test_demo_loads_once_with_every_role(db, keyring):
    guide = demo.ensure(db, keyring)
    assert guide.created and len(guide.institutions) == 15 and len(guide.people) == 6
    again = demo.ensure(db, keyring)
    assert not again.created and again.people == guide.people
    assert db.run(ledger.totals, write=False).balanced
    ids = {p["name"]: p["psn_no"] for p in guide.people}
    checklist = db.run(lambda c: families.checklist(c, db.clock(), guardian_id=ids["李明"], child_id=ids["李小雨"]), write=False)
    assert all(item["met"] for item in checklist["conditions"]), checklist


def test_a_child_pays_from_the_guardians_account_and_the_cross_region_patient_settles(db, keyring):
    guide = demo.ensure(db, keyring)
    ids = {p["name"]: p["psn_no"] for p in guide.people}
    now = db.clock()
    community = db.run(lambda c: institutions.get(c, demo.institution_code("440300", "community")), write=False)
    lines = [{"feedetl_sn": "1", "medins_list_codg": "A201", "name": "儿科诊查费", "unit_price": "25.00", "quantity": "1"}]
    before = db.run(lambda c: ledger.balance(c, person_account(ids["李明"])), write=False)

    def scanned(c, visit_id, *, holder, person=None):  # noqa: ANN001, ANN202 — set-up: the holder's code scanned for the visit
        code = paycodes.issue(c, keyring, now, holder_id=holder, person_id=person, actor="test").code
        paycodes.unwrap(paycodes.consume(c, keyring, now, code=code, institution=community, actor="test", visit_id=visit_id))

    def child_visit(c):
        v = visits.open_visit(c, now, institution=community, person_id=ids["李小雨"], kind="outpatient")
        visits.upload_lines(c, now, institution=community, visit_id=v.id, items=lines)
        scanned(c, v.id, holder=ids["李明"], person=ids["李小雨"])  # the guardian shows the child's code for this visit
        return settlement.settle(c, now, institution=community, visit_id=v.id, msgid="DEMO-CHILD-1",
                                 account=AccountRequest(use=True, payer="guardian", payer_person_id=ids["李明"]), actor="test")

    doc = db.run(child_visit)
    # child outpatient at community level: 25.00 × 75% = 18.75 from the fund; 6.25 from the guardian's account
    assert doc["hifp_pay"] == "18.75" and doc["acct_pay"] == "6.25" and doc["acct_mulaid_pay"] == "6.25" and doc["psn_cash_pay"] == "0.00"
    assert db.run(lambda c: ledger.balance(c, person_account(ids["李明"])), write=False) == before - 625

    def cross_region(c):
        v = visits.open_visit(c, now, institution=community, person_id=ids["赵磊"], kind="outpatient")
        visits.upload_lines(c, now, institution=community, visit_id=v.id, items=lines)
        scanned(c, v.id, holder=ids["赵磊"])  # filed in Shenzhen: his code is accepted there
        return v, settlement.settle(c, now, institution=community, visit_id=v.id, msgid="DEMO-XR-1", account=AccountRequest(use=True),
                                    actor="test")

    v, doc = db.run(cross_region)
    assert v.filing == "long_term" and doc["insuplc_admdvs"] == "330200" and doc["mdtrtarea_admvs"] == "440300"
    assert doc["catalogue_version"] == "440300-2026.1" and doc["policy_version"] == "330200-2026.1"


def test_the_guide_prints_every_token_whole_on_a_narrow_terminal(db, keyring):
    """A HIS developer copies the credential and the fsi_token out of the guide (docs/fsi.md): neither may be folded
    across lines, whatever the terminal's width (a log file's is 80)."""
    from rich.console import Console

    guide = demo.ensure(db, keyring)
    console = Console(width=80, record=True, file=io.StringIO())
    demo.print_guide(guide, "http://127.0.0.1:8000", console)
    text = console.export_text()
    for row in guide.institutions:
        assert row["credential"] in text and row["fsi_token"] in text, row
