"""Settlement through the services, on SQLite and PostgreSQL: the whole paths, undo, idempotency, concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.support.presence import present
from tests.support.settlement import acc, balance, open_with_lines, settle
from tests.support.world import seed
from yibao.domain.errors import Conflict, NotFound
from yibao.domain.ledger import person_account
from yibao.services.books import accounts, ledger
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.store.tables import transfers


def test_outpatient_path_presettle_settle_cancel(db, keyring):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    present(db, w.hospital, w.employee.id, v.id)  # the owner is present: the pre-settlement shows the account's share
    pre = db.run(lambda c: settlement.presettle(c, db.clock(), institution=w.hospital, visit_id=v.id, account=AccountRequest(use=True)),
                 write=False)
    doc = settle(db, w.hospital, v.id, "MSG-1")
    # 300 + 25 + 50 = 375; B: over 5.00, pre 2.00, in 18.00; C 50 own; in scope 318.00;
    # Shenzhen employee outpatient level3: deductible 300 -> 300.00 used; (318-300)*0.50 = 9.00
    assert doc["medfee_sumamt"] == "375.00" and doc["act_pay_dedc"] == "300.00" and doc["hifp_pay"] == "9.00"
    assert doc["acct_pay"] == "366.00" and doc["psn_cash_pay"] == "0.00" and doc["balc"] == "2634.00"
    assert {k: pre[k] for k in ("hifp_pay", "acct_pay", "psn_cash_pay")} == {k: doc[k] for k in ("hifp_pay", "acct_pay", "psn_cash_pay")}
    assert balance(db, w.employee.id) == 263400
    assert acc(db, w.employee.id).outpatient_deductible_used == 30000
    assert db.run(ledger.totals, write=False).balanced

    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=doc["setl_id"], actor="test"))
    assert balance(db, w.employee.id) == 300000
    assert acc(db, w.employee.id).as_dict() == {k: 0 for k in acc(db, w.employee.id).as_dict()}
    assert db.run(ledger.totals, write=False).balanced
    # after a cancel, a line can be revoked and the rest settled again (refund of some items)
    db.run(lambda c: visits.revoke_line(c, institution=w.hospital, visit_id=v.id, feedetl_sn="3"))
    again = settle(db, w.hospital, v.id, "MSG-2")
    assert again["medfee_sumamt"] == "325.00" and again["acct_pay"] == "316.00"
    assert balance(db, w.employee.id) == 300000 - 31600

    # as the holder reads the account: each movement's hospital and patient; the month's refund apart from income
    now = db.clock()

    def read(c):
        account = person_account(w.employee.id)
        statement = ledger.monthly_statement(c, account, now.year, now.month)
        return statement, accounts.month_figures(statement), accounts.about(c, [t for t, _ in ledger.history(c, account)])
    statement, figures, about = db.run(read, write=False)
    assert (figures.refunds, figures.payments, figures.income) == (36600, 36600 + 31600, statement.credits - 36600)
    assert statement.opening + figures.income + figures.refunds - figures.payments == statement.closing
    assert about[doc["setl_id"]] == accounts.About(w.hospital.name, w.employee.id) and again["setl_id"] in about


def test_inpatient_path_with_admission_counting_and_reversal(db, keyring):
    w = seed(db, keyring)
    lines = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "阑尾切除术", "unit_price": "5000.00", "quantity": "1"}]
    v1 = open_with_lines(db, w.hospital, w.retiree.id, kind="inpatient", lines=lines)
    with pytest.raises(Conflict, match="discharge"):
        settle(db, w.hospital, v1.id, "IP-1")
    db.run(lambda c: visits.discharge(c, db.clock(), institution=w.hospital, visit_id=v1.id))
    doc = settle(db, w.hospital, v1.id, "IP-1")
    # retired employee inpatient level3: deductible 600; (5000-600)*0.95 = 4180.00; share 820.00 from the account
    assert doc["act_pay_dedc"] == "600.00" and doc["hifp_pay"] == "4180.00" and doc["acct_pay"] == "820.00"
    v2 = open_with_lines(db, w.hospital, w.retiree.id, kind="inpatient", lines=lines)
    assert v2.admission_number == 2
    db.run(lambda c: visits.discharge(c, db.clock(), institution=w.hospital, visit_id=v2.id))
    doc2 = settle(db, w.hospital, v2.id, "IP-2")
    assert doc2["act_pay_dedc"] == "300.00"  # halved for the second admission
    before = acc(db, w.retiree.id)
    out = db.run(lambda c: settlement.reverse(c, db.clock(), institution=w.hospital, omsgid="IP-2", oinfno="2207", actor="test"))
    assert out["status"] == "reversed"
    after = acc(db, w.retiree.id)
    assert after.pool_fund_paid == before.pool_fund_paid - 446500  # (5000-300)*0.95 = 4465.00
    assert balance(db, w.retiree.id) == 300000 - 82000
    assert db.run(ledger.totals, write=False).balanced
    # reversing again, or settling again with the reversed message id: no second effect
    again = db.run(lambda c: settlement.reverse(c, db.clock(), institution=w.hospital, omsgid="IP-2", oinfno="2207", actor="test"))
    assert again["status"] == "reversed"
    with pytest.raises(Conflict):
        settle(db, w.hospital, v2.id, "IP-2")


def test_same_message_settles_once(db, keyring):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    first = settle(db, w.hospital, v.id, "DUP")
    second = settle(db, w.hospital, v.id, "DUP")
    assert first == second
    assert balance(db, w.employee.id) == 300000 - 36600
    count = db.run(lambda c: len(c.execute(select(transfers.c.id).where(transfers.c.ref == first["setl_id"])).all()), write=False)
    assert count == 2  # pool and account; cash is 0.00, and a zero leg is not posted


def test_reversal_before_the_original_arrives_blocks_it(db, keyring):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    out = db.run(lambda c: settlement.reverse(c, db.clock(), institution=w.hospital, omsgid="LOST", oinfno="2207", actor="test"))
    assert out["status"] == "reversed_before_arrival"
    with pytest.raises(Conflict, match="reversed"):
        settle(db, w.hospital, v.id, "LOST")
    assert balance(db, w.employee.id) == 300000


def test_institutions_see_only_their_own(db, keyring):
    w = seed(db, keyring)
    v = open_with_lines(db, w.hospital, w.employee.id)
    doc = settle(db, w.hospital, v.id, "OWN-1")
    with pytest.raises(NotFound):
        db.run(lambda c: visits.get(c, w.other_hospital.id, v.id), write=False)
    with pytest.raises(NotFound):
        db.run(lambda c: settlement.get_settlement(c, institution=w.other_hospital, setl_id=doc["setl_id"]), write=False)
    with pytest.raises(NotFound):
        db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.other_hospital, setl_id=doc["setl_id"], actor="x"))


def test_fifty_concurrent_settlements_never_overdraw(db, keyring):
    w = seed(db, keyring, balance=100000)  # 1000.00 yuan
    lines = [{"feedetl_sn": "1", "medins_list_codg": "C1", "name": "自费项目", "unit_price": "70.00", "quantity": "1"}]
    visit_ids = [open_with_lines(db, w.hospital, w.employee.id, lines=lines).id for _ in range(50)]
    results, errors = [], []

    def run(i: int) -> None:
        try:
            results.append(settle(db, w.hospital, visit_ids[i], f"C-{i}"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    paid = sum(int(d["acct_pay"].replace(".", "")) for d in results)
    cash = sum(int(d["psn_cash_pay"].replace(".", "")) for d in results)
    assert paid == 100000 and paid + cash == 50 * 7000  # 1000.00 from the account, the rest in cash
    assert balance(db, w.employee.id) == 0
    t = db.run(ledger.totals, write=False)
    assert t.balanced and t.debits_posted == t.credits_posted


def test_two_hundred_concurrent_settlements_of_one_region_add_up_and_the_trail_verifies(db, keyring):
    """Issue 13: 200 settlements of one region at one hospital from 40 threads at once (on PostgreSQL, 40 transactions
    in flight: no fund, receivable or audit-head row is shared by them). Every balance derived from the transfers is the
    sum of the settlements' legs, the ledger balances, and every lane of the region's trail verifies."""
    from datetime import date

    from tests.support.world import credit
    from yibao.domain.identity import make_id_number
    from yibao.domain.ledger import FUND_LAYERS, fund_account, institution_receivable, person_account
    from yibao.services.books import audit
    from yibao.services.people import persons as people
    from yibao.store.tables import audit_log

    w = seed(db, keyring)
    now = db.clock()
    patients = []
    for n in range(40):
        p = db.run(lambda c, n=n: people.enrol(c, keyring, now, region="440300", id_number=make_id_number("440301", date(1950 + n, 5, 1 + n % 28),
                                                                                                       100 + n),
                                               name=f"并发{n}", insurance_type="employee", employment_status="employed", tier=1))
        credit(db, p.id, 2000_00, f"open:{p.id}")
        patients.append(p.id)
    jobs = [(patients[i % 40], i % 2 == 0, open_with_lines(db, w.hospital, patients[i % 40]).id) for i in range(200)]
    fund_before = {layer: db.run(lambda c, layer=layer: ledger.balance(c, fund_account("440300", layer)), write=False) for layer in FUND_LAYERS}
    results: dict[int, dict] = {}
    errors: list[BaseException] = []
    gate = threading.Barrier(40)

    def worker(k: int) -> None:
        gate.wait()
        for i in range(k, 200, 40):
            person, use, visit_id = jobs[i]
            try:
                results[i] = settle(db, w.hospital, visit_id, f"R-{i}", use=use)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 200

    def fen(doc: dict, key: str) -> int:
        return int(doc[key].replace(".", ""))

    fund_paid = {"pool": "hifp_pay", "serious_illness": "hifmi_pay", "large_amount": "hifob_pay", "assistance": "maf_pay"}
    for layer, key in fund_paid.items():
        paid = sum(fen(d, key) for d in results.values())
        assert fund_before[layer] - db.run(lambda c, layer=layer: ledger.balance(c, fund_account("440300", layer)), write=False) == paid
    owed = sum(fen(d, "fund_pay_sumamt") + fen(d, "acct_pay") for d in results.values())
    assert db.run(lambda c: ledger.balance(c, institution_receivable(w.hospital.id)), write=False) == owed
    for person in patients:
        spent = sum(fen(results[i], "acct_pay") for i in range(200) if jobs[i][0] == person)
        assert db.run(lambda c, person=person: ledger.balance(c, person_account(person)), write=False) == 2000_00 - spent
    assert db.run(ledger.totals, write=False).balanced
    reports = db.run(audit.verify, write=False)
    assert all(r.ok for r in reports), [r.problem for r in reports if not r.ok]
    if db.engine.dialect.name == "postgresql":
        # The units overlapped, so they took different heads instead of waiting on one (SQLite has one writer: lane 0).
        lanes = db.run(lambda c: c.execute(select(audit_log.c.lane).where(audit_log.c.region == "440300").distinct()).scalars().all(),
                       write=False)
        assert len(lanes) > 1


def test_a_layer_reported_as_oth_pay_is_stored_posted_documented_and_given_back(db, keyring, monkeypatch):
    """Issue 16 item 4: a policy's layer above the large-amount cap reported as oth_pay goes where every fund layer goes —
    the settlement row (other), the fund's own ledger account (fund:<region>:other), the setlinfo document (oth_pay) —
    and a cancel gives it back with the year's accumulators."""
    import dataclasses

    from yibao.domain.ledger import fund_account
    from yibao.domain.policy import BeyondLargeAmount, LargeAmount, RatioSchedule
    from yibao.policies.loader import builtin_policy
    from yibao.services.agency import policies

    base = builtin_policy("440300", 2026)
    emp = base.schemes["employee"]
    edited = dataclasses.replace(base, schemes={**base.schemes, "employee": dataclasses.replace(
        emp, annual_cap=100_000, layers=("large_amount", "beyond_large_amount"),
        large_amount=LargeAmount(bands=RatioSchedule.flat(900_000), annual_cap=100_000),
        beyond_large_amount=BeyondLargeAmount(bands=RatioSchedule.flat(500_000), annual_cap=None, reported_as="oth_pay"))})
    monkeypatch.setattr(policies, "builtin_policy", lambda region, year: edited if region == "440300" else builtin_policy(region, year))
    w = seed(db, keyring)
    stay = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "阑尾切除术", "unit_price": "5000.00", "quantity": "1"}]
    v = open_with_lines(db, w.hospital, w.employee.id, kind="inpatient", lines=stay)
    db.run(lambda c: visits.discharge(c, db.clock(), institution=w.hospital, visit_id=v.id))
    doc = settle(db, w.hospital, v.id, "OTH-1")
    # Shenzhen employee, level 3: deductible 600.00, eligible 4400.00 at 90 %: raw 3960.00 > the cap 1000.00; covered
    # 1000/0.90 = 1111.11, overflow 4400 - 1111.11 = 3288.89; large amount 90 % capped at 1000.00 (covering 1111.11);
    # above its cap 3288.89 - 1111.11 = 2177.78 × 50 % = 1088.89 (oth_pay); funds 3088.89; the account pays 1911.11
    assert (doc["hifp_pay"], doc["hifob_pay"], doc["oth_pay"], doc["fund_pay_sumamt"]) == ("1000.00", "1000.00", "1088.89", "3088.89")
    assert doc["acct_pay"] == "1911.11" and doc["psn_cash_pay"] == "0.00"
    row = db.run(lambda c: c.execute(select(settlement.S.c.other, settlement.S.c.fund_total).where(settlement.S.c.id == doc["setl_id"])).one(),
                 write=False)
    assert (row.other, row.fund_total) == (108_889, 308_889)
    assert db.run(lambda c: ledger.balance(c, fund_account("440300", "other")), write=False) == -108_889
    assert acc(db, w.employee.id).beyond_cap_paid == 108_889 and acc(db, w.employee.id).beyond_cap_base == 217_778
    assert db.run(ledger.totals, write=False).balanced
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=doc["setl_id"], actor="test"))
    assert db.run(lambda c: ledger.balance(c, fund_account("440300", "other")), write=False) == 0
    assert acc(db, w.employee.id).as_dict() == {k: 0 for k in acc(db, w.employee.id).as_dict()}
    assert db.run(ledger.totals, write=False).balanced
