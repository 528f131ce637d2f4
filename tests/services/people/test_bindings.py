"""E-card bindings to payment institutions, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.support.identity import admit, bind, ecard, id_number_of, name_of
from tests.support.world import seed
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.services.agency import payment_institutions as pis
from yibao.services.people import bindings, cards
from yibao.store.tables import ecard_bindings as B


def _defaults(db, card_id):
    return db.run(lambda c: c.execute(select(func.count()).where(B.c.card_id == card_id, B.c.status == "bound",
                                                                 B.c.is_default.is_(True))).scalar_one(), write=False)


def test_bindings_default_limit_and_unbind(db, keyring):
    w = seed(db, keyring)
    pid = w.employee.id
    for pi_id in ("wechat", "alipay", "unionpay"):
        admit(db, pi_id)
    admit(db, "qd-bank", region="370200")
    with pytest.raises(Conflict) as exc:
        bind(db, pid, "wechat")
    assert exc.value.field == "ecard"
    card = ecard(db, keyring, pid, name_of(1), id_number_of(1))

    items = bind(db, pid, "wechat")
    assert items == [{"payment_institution_id": "wechat", "name": "wechat 支付", "kind": "wallet", "institution_status": "admitted", "connected": True,
                      "default": True, "password_free_limit": "0.00", "updated_at": items[0]["updated_at"]}]
    items = bind(db, pid, "alipay", password_free_limit=50000)
    assert [(i["payment_institution_id"], i["default"], i["password_free_limit"]) for i in items] == \
        [("wechat", True, "0.00"), ("alipay", False, "500.00")]
    items = bind(db, pid, "unionpay", make_default=True)
    assert [i["payment_institution_id"] for i in items if i["default"]] == ["unionpay"]
    assert _defaults(db, card.id) == 1

    for pi_id, exc_type, field in [("wechat", Conflict, "payment_institution_id"), ("nobody", NotFound, "payment_institution_id"),
                                   ("qd-bank", NotFound, "payment_institution_id")]:
        with pytest.raises(exc_type) as exc:
            bind(db, pid, pi_id)
        assert exc.value.field == field
    for limit in (-1, 200001):
        with pytest.raises(InputError) as exc:
            bind(db, pid, "other", password_free_limit=limit)
        assert exc.value.field == "password_free_limit"

    now = db.clock()
    items = db.run(lambda c: bindings.set_default(c, now, holder_id=pid, pi_id="alipay", actor="h"))
    assert items[0]["payment_institution_id"] == "alipay" and _defaults(db, card.id) == 1
    items = db.run(lambda c: bindings.set_limit(c, now, holder_id=pid, pi_id="wechat", password_free_limit=200000, actor="h"))
    assert {i["payment_institution_id"]: i["password_free_limit"] for i in items}["wechat"] == "2000.00"
    items = db.run(lambda c: bindings.unbind(c, now, holder_id=pid, pi_id="alipay", actor="h"))
    assert [(i["payment_institution_id"], i["default"]) for i in items] == [("wechat", True), ("unionpay", False)]
    with pytest.raises(NotFound):
        db.run(lambda c: bindings.set_default(c, now, holder_id=pid, pi_id="alipay", actor="h"))
    with pytest.raises(NotFound):
        db.run(lambda c: bindings.unbind(c, now, holder_id=pid, pi_id="alipay", actor="h"))
    items = bind(db, pid, "alipay", password_free_limit=100)  # a second binding after unbinding reuses the row
    assert {i["payment_institution_id"]: (i["default"], i["password_free_limit"]) for i in items}["alipay"] == (False, "1.00")
    for pi_id in ("wechat", "unionpay", "alipay"):
        db.run(lambda c, p=pi_id: bindings.unbind(c, now, holder_id=pid, pi_id=p, actor="h"))
    assert db.run(lambda c: bindings.of_holder(c, pid), write=False) == []
    assert _defaults(db, card.id) == 0


def test_suspended_institutions_cannot_be_bound_and_a_cancelled_ecard_loses_its_bindings(db, keyring):
    w = seed(db, keyring)
    pid = w.retiree.id
    admit(db, "wechat")
    admit(db, "alipay")
    card = ecard(db, keyring, pid, name_of(2), id_number_of(2))
    bind(db, pid, "wechat")
    now = db.clock()
    db.run(lambda c: pis.suspend(c, now, pi_id="alipay", reason=None, actor="op"))
    with pytest.raises(Conflict) as exc:
        bind(db, pid, "alipay")
    assert exc.value.code == "not_admitted"
    db.run(lambda c: pis.suspend(c, now, pi_id="wechat", reason=None, actor="op"))
    assert db.run(lambda c: bindings.of_holder(c, pid), write=False)[0]["institution_status"] == "suspended"
    db.run(lambda c: cards.cancel(c, now, card_id=card.id, holder_id=pid, actor="h"))
    assert db.run(lambda c: c.execute(select(B.c.status, B.c.is_default).where(B.c.card_id == card.id)).all(), write=False) == \
        [("unbound", False)]
    assert db.run(lambda c: bindings.of_holder(c, pid), write=False) == []


def test_concurrent_default_changes_leave_exactly_one_default(db, keyring):
    w = seed(db, keyring)
    pid = w.employee.id
    ids = [f"pay{i}" for i in range(6)]
    for pi_id in ids:
        admit(db, pi_id)
    card = ecard(db, keyring, pid, name_of(1), id_number_of(1))
    for pi_id in ids:
        bind(db, pid, pi_id)
    errors = []

    def worker(pi_id):
        try:
            for _ in range(3):
                db.run(lambda c: bindings.set_default(c, db.clock(), holder_id=pid, pi_id=pi_id, actor="h"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and _defaults(db, card.id) == 1
