"""Settlement through the services, on SQLite and PostgreSQL: the whole paths, undo, idempotency, concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.support.presence import present
from tests.support.settlement import acc, balance, open_with_lines, settle
from tests.support.world import seed
from yibao.domain.errors import Conflict, NotFound
from yibao.services.books import ledger
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
