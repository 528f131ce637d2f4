"""Payment-institution admission records, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.identity import admit
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit


def test_admit_suspend_readmit_and_list(db):
    now = db.clock()
    alipay = admit(db, "alipay")
    assert (alipay.status, alipay.region, alipay.kind) == ("admitted", "440300", "wallet")
    admit(db, "icbc", kind="bank")
    admit(db, "qd-pay", region="370200")
    with pytest.raises(Conflict) as exc:
        admit(db, "alipay")
    assert exc.value.code == "already_admitted"
    for field, kw in [("id", {"pi_id": "x"}), ("region", {"region": "44030"}), ("kind", {"kind": "card"}),
                      ("admission_ref", {"admission_ref": " "}), ("name", {"name": ""})]:
        args = dict(pi_id="newpay", region="440300", name="新支付", kind="wallet", admission_ref="ref-1", actor="op") | kw
        with pytest.raises(InputError) as exc:
            db.run(lambda c, a=args: pis.admit(c, now, **a))
        assert exc.value.field == field

    suspended = db.run(lambda c: pis.suspend(c, now, pi_id="alipay", reason="风险事件", actor="op"))
    assert suspended.status == "suspended"
    with pytest.raises(Conflict):
        db.run(lambda c: pis.suspend(c, now, pi_id="alipay", reason=None, actor="op"))
    with pytest.raises(NotFound):
        db.run(lambda c: pis.suspend(c, now, pi_id="nobody", reason=None, actor="op"))
    assert [p.id for p in db.run(lambda c: pis.list_admitted(c, "440300"), write=False)] == ["icbc"]
    assert [p.id for p in db.run(lambda c: pis.list_all(c), write=False)] == ["qd-pay", "alipay", "icbc"]
    with pytest.raises(Conflict) as exc:
        admit(db, "alipay", region="370200")
    assert exc.value.field == "region"
    again = db.run(lambda c: pis.admit(c, now, pi_id="alipay", region="440300", name="支付宝", kind="wallet", admission_ref="深医保准〔2026〕9号",
                                       actor="op"))
    assert again.status == "admitted" and again.admission_ref == "深医保准〔2026〕9号"
    assert [e.action for e in db.run(lambda c: audit.entries(c, "440300", 2), write=False)] == \
        ["payment_institution.admit", "payment_institution.suspend"]
