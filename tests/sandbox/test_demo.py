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
    assert doc["catalogue_version"] == "440300-2026.1" and doc["policy_version"] == "330200-2026.2"


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


def _counts(db) -> dict[str, int]:  # noqa: ANN001
    from sqlalchemy import func, select

    from yibao.store.tables import card_accounts, clearing_applications, settlements, transfers

    return db.run(lambda c: {t.name: c.execute(select(func.count()).select_from(t)).scalar_one()
                             for t in (settlements, transfers, clearing_applications, card_accounts)}, write=False)


def test_the_demo_books_have_an_ended_month_waiting_for_clearing_and_a_card_account(db, keyring):
    """Issue 15's trial: the demo had nothing to clear and no card to pay a benefit onto. Its first start seeds the previous
    month's counter settlements (through the services, on their days), the hospital's application for it, waiting, and
    张建国's card account; a second start seeds nothing twice."""
    from yibao.domain import clearing as rules
    from yibao.services.clearing import applications
    from yibao.services.clearing.figures import figures
    from yibao.services.people import card_accounts

    guide = demo.ensure(db, keyring)
    month = demo.previous_month(db.clock())
    assert str(month) == "2026-10"  # the test clock: 2026-11-22 09:00 UTC
    [app] = guide.clearing
    assert (app["fixmedins_code"], app["setlym"], app["status"], app["clr_stas"], app["clr_type"]) == ("H440300L3", "202610", "applied", "10", "11")
    rules.check_month_ended(month, db.clock())  # the month has ended: it can be cleared
    review = db.run(lambda c: applications.review(c, app["clr_appy_evt_id"]), write=False)
    # The hospital declared its own settlements' totals: they agree with the platform's ledger to the fen, and something is payable.
    assert review["agrees"] and review["problem"] is None, review
    f = db.run(lambda c: figures(c, institution_id="H440300L3", month=month, clr_type="11"), write=False)
    assert f.psntime == 3 and f.fund > 0 and f.account > 0  # three visits that month; the cross-region one used his account
    assert review["payable"]["payable"] != "0.00"
    assert db.run(lambda c: applications.payee(c, "H440300L3"), write=False) is not None  # the operator can pay it
    # Nothing of this month's own hospital work was moved into it: the month of the test clock is untouched but for today's visit.
    this_month = rules.Month(2026, 11)
    assert db.run(lambda c: figures(c, institution_id="H440300L3", month=this_month, clr_type="11"), write=False).psntime == 1
    assert db.run(ledger.totals, write=False).balanced

    ids = {p["name"]: p["psn_no"] for p in guide.people}
    account = db.run(lambda c: card_accounts.financial_account(c, ids["张建国"]), write=False)
    assert account is not None and account.bank_id == "bank-370200"
    assert guide.card_accounts == [{"name": "张建国", "psn_no": ids["张建国"], "region": "370200", "bank": "bank-370200",
                                    "account": f"****{account.account_last4}"}]

    before = _counts(db)
    again = demo.ensure(db, keyring)
    assert not again.created and _counts(db) == before and again.clearing == guide.clearing


def test_the_seeded_month_is_paid_and_a_benefit_credited_through_the_demos_sandbox_bank(db, keyring):
    """What the guide tells the operator to try works against the mounted SANDBOX bank: the waiting application approved and
    paid to the recorded payee (cleared), a subsidy batch credited to 张建国's card account."""
    import uuid

    import httpx

    from tests.support.channels import CLIENT_TIMEOUT_S
    from tests.support.payments import PlatformServer
    from yibao.app import create_app

    guide = demo.ensure(db, keyring)
    psn = next(p["psn_no"] for p in guide.people if p["name"] == "张建国")
    app_id = guide.clearing[0]["clr_appy_evt_id"]
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, sandboxes=True, base_url=url, sandbox_timeout_s=CLIENT_TIMEOUT_S))
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {demo.OPERATOR_TOKEN}"}) as client:
            def post(path: str, body: dict | None = None) -> httpx.Response:
                return client.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

            approved = post(f"/api/v1/admin/clearing-applications/{app_id}/approve")
            assert approved.status_code == 200 and approved.json()["status"] == "accepted", approved.text
            paid = post(f"/api/v1/admin/clearing-applications/{app_id}/pay", {})
            assert paid.status_code == 200 and paid.json()["status"] == "cleared", paid.text
            batch = post("/api/v1/admin/benefit-batches", {"region": "370200", "agency": "青岛市民政局", "batch_no": "T-DEMO-1",
                                                           "purpose": "高龄津贴", "rows": [{"psn_no": psn, "amount": "300.00"}]})
            assert batch.status_code == 201, batch.text
            submitted = post(f"/api/v1/admin/benefit-batches/{batch.json()['batch_id']}/submit")
            assert submitted.status_code == 200, submitted.text
            [credit] = submitted.json()["credits"]
            assert credit["status"] == "credited", credit
    finally:
        server.stop()
    assert db.run(ledger.totals, write=False).balanced
