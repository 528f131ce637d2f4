"""Families through the services, on SQLite and PostgreSQL: the guardian rule's conditions, mutual aid."""

from __future__ import annotations

import pytest

from tests.support.identity import (
    active_card,
    admit,
    bind,
    ecard,
    enrol_adult,
    enrol_child,
    guardian_ready,
    id_number_of,
    link_child,
    name_of,
)
from tests.support.presence import present
from tests.support.world import seed
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.services.books import audit
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.people import bindings, families

RICH = 600000  # 6000.00 yuan: above Shenzhen's 5008.80


def _met(check):
    return {c["number"]: c["met"] for c in check["conditions"]}


def _link_account(db, guardian_id, child_id):
    return db.run(lambda c: families.link_family_account(c, db.clock(), guardian_id=guardian_id, child_id=child_id, actor="test"))


def test_guardian_links_the_child_card_then_the_family_account(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    check = link_child(db, keyring, w.employee.id)
    assert check["child_psn_no"] == child.id and check["allowed"] is False
    assert _met(check) == {1: True, 2: True, 3: False, 4: True, 5: True}
    assert db.run(lambda c: families.can_view(c, w.employee.id, child.id), write=False)
    payers = db.run(lambda c: families.account_payers(c, keyring, child.id), write=False)
    assert [(x["payer"], x["psn_no"], x["relation"]) for x in payers] == [("guardian", w.employee.id, "guardian")]
    with pytest.raises(Conflict) as exc:
        link_child(db, keyring, w.employee.id)
    assert exc.value.code == "already_linked"

    check = _link_account(db, w.employee.id, child.id)
    assert check["allowed"] is True and all(_met(check).values())
    balance = check["conditions"][4]
    assert (balance["threshold"], balance["balance"]) == ("5008.80", "6000.00")
    facts = db.run(lambda c: families.guardian_facts(c, guardian_id=w.employee.id, child_id=child.id, region="440300"), write=False)
    assert facts.child_card_linked and facts.family_account_linked and facts.guardian_ecard_bound
    actions = [e.action for e in db.run(lambda c: audit.entries(c, "440300", 2), write=False)]
    assert actions == ["family.link_account", "family.link_child_card"]


def test_the_link_opens_the_guardians_account_to_the_childs_outpatient_bill(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    now = db.clock()
    lines = [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "50.00", "quantity": "1"}]

    def settle(msgid):
        v = db.run(lambda c: visits.open_visit(c, now, institution=w.hospital, person_id=child.id, kind="outpatient"))
        db.run(lambda c: visits.upload_lines(c, now, institution=w.hospital, visit_id=v.id, items=lines))
        present(db, w.hospital, w.employee.id, v.id, person_id=child.id)  # the guardian presented a credential for the child's visit
        return db.run(lambda c: settlement.settle(c, now, institution=w.hospital, visit_id=v.id, msgid=msgid, actor="test",
                                                  account=AccountRequest(use=True, payer="guardian", payer_person_id=w.employee.id)))

    refused = settle("G-1")  # condition 3 not yet met
    assert refused["acct_pay"] == "0.00" and refused["account_refusal"]["failed_conditions"] == ["family_account_linked"]
    _link_account(db, w.employee.id, child.id)
    paid = settle("G-2")
    assert paid["acct_pay"] != "0.00" and paid["account_refusal"] is None


def test_each_refusal_names_its_condition(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = enrol_child(db, keyring, w.employee.id)
    active_card(db, keyring, child.id, card_no="CHILD0001", financial=False)  # condition 1: not a financial card
    admit(db, "wechat")
    ecard(db, keyring, w.employee.id, name_of(1), id_number_of(1))  # condition 2: e-card not yet bound

    with pytest.raises(Forbidden) as exc:
        link_child(db, keyring, w.employee.id)
    assert exc.value.field == "conditions" and exc.value.code == "guardian_conditions_not_met"
    assert "条件1" in exc.value.message_zh and "条件2" in exc.value.message_zh and "条件4" not in exc.value.message_zh
    assert "condition 1 not met" in exc.value.message_en and "condition 2 not met" in exc.value.message_en

    bind(db, w.employee.id, "wechat")
    with pytest.raises(Forbidden) as exc:
        link_child(db, keyring, w.employee.id)
    assert "条件1" in exc.value.message_zh and "条件2" not in exc.value.message_zh

    # the retiree has a bound e-card too but is not the guardian recorded at the child's enrolment
    ecard(db, keyring, w.retiree.id, name_of(2), id_number_of(2))
    bind(db, w.retiree.id, "wechat")
    with pytest.raises(Forbidden) as exc:
        link_child(db, keyring, w.retiree.id)
    assert "条件4" in exc.value.message_zh and "condition 4 not met: the guardian must be the one recorded" in exc.value.message_en


def test_lost_child_card_fails_condition_one_and_unknown_cards_are_not_found(db, keyring):
    w = seed(db, keyring, balance=RICH)
    guardian_ready(db, keyring, w.employee, 1)
    with pytest.raises(NotFound) as exc:
        link_child(db, keyring, w.employee.id, child_name="小红")  # right number, wrong name
    assert exc.value.field == "card_no"
    with pytest.raises(NotFound):
        link_child(db, keyring, w.employee.id, card_no="NOSUCHCARD")
    with pytest.raises(NotFound):  # not linked: the child is not visible, so no family-account link
        _link_account(db, w.employee.id, w.retiree.id)


def test_condition_five_is_reported_with_threshold_and_balance(db, keyring):
    w = seed(db, keyring, balance=500880)  # exactly 5008.80: must be above
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    check = _link_account(db, w.employee.id, child.id)
    assert _met(check) == {1: True, 2: True, 3: True, 4: True, 5: False} and check["allowed"] is False
    assert (check["conditions"][4]["threshold"], check["conditions"][4]["balance"]) == ("5008.80", "5008.80")
    assert check["conditions"][4]["zh"].startswith("监护人医保个人账户余额")


def test_mutual_aid_grant_and_revoke(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    spouse = enrol_adult(db, keyring, n=21, name="配偶甲")
    spouse_id_no = id_number_of_adult(21)

    def grant(holder=w.employee.id, relation="spouse", number=spouse_id_no, name="配偶甲"):
        return db.run(lambda c: families.grant_mutual_aid(c, keyring, now, holder_id=holder, relation=relation, id_number=number,
                                                          name=name, actor="h"))

    for kw, err, field in [({"name": "配偶乙"}, NotFound, "id_number"), ({"number": id_number_of_adult(22)}, NotFound, "id_number"),
                           ({"relation": "cousin"}, InputError, "relation"), ({"number": id_number_of(1), "name": name_of(1)}, InputError, "id_number"),
                           ({"holder": w.resident.id}, Conflict, "psn_no")]:
        with pytest.raises(err) as exc:
            grant(**kw)
        assert exc.value.field == field
    elsewhere = enrol_adult(db, keyring, n=23, name="外地亲属", region="370200")
    with pytest.raises(Conflict) as exc:
        grant(number=id_number_of_adult(23, "370200"), name="外地亲属")
    assert exc.value.code == "other_region" and elsewhere.region == "370200"

    granted = grant()
    assert granted == {"holder_psn_no": w.employee.id, "member_psn_no": spouse.id, "relation": "spouse", "name": "配**", "status": "active"}
    assert db.run(lambda c: families.mutual_aid_relation(c, holder_id=w.employee.id, member_id=spouse.id), write=False) == "spouse"
    with pytest.raises(Conflict):
        grant(relation="child")
    listed = db.run(lambda c: families.links(c, keyring, spouse.id), write=False)
    assert [(x["relation"], x["other_psn_no"], x["other_name"]) for x in listed] == [("spouse", w.employee.id, "测**")]
    # The counter offers the spouse the holder's account, named (settlement's payer "family"); not the other way round.
    assert db.run(lambda c: families.account_payers(c, keyring, spouse.id), write=False) == [
        {"payer": "family", "psn_no": w.employee.id, "relation": "spouse", "name": "测**"}]
    assert db.run(lambda c: families.account_payers(c, keyring, w.employee.id), write=False) == []
    # a family link is mutual: the holder sees the relative they added in full, and the relative sees the holder in full
    mine = db.run(lambda c: families.links(c, keyring, w.employee.id, own_in_full=True), write=False)
    assert [(x["other_psn_no"], x["other_name"]) for x in mine] == [(spouse.id, "配偶甲")]
    theirs = db.run(lambda c: families.links(c, keyring, spouse.id, own_in_full=True), write=False)
    assert [x["other_name"] for x in theirs] == [granted_holder_name := db.run(
        lambda c: families.display_name(c, keyring, reader_id=spouse.id, person_id=w.employee.id), write=False)]
    assert granted_holder_name != "测**" and granted_holder_name.startswith("测")
    assert db.run(lambda c: families.display_name(c, keyring, reader_id=w.employee.id, person_id=spouse.id), write=False) == "配偶甲"
    # a stranger (no link) and an institution (no reader) still see masked names
    assert db.run(lambda c: families.display_name(c, keyring, reader_id=w.resident.id, person_id=spouse.id), write=False) == "配**"
    assert db.run(lambda c: families.display_name(c, keyring, reader_id=None, person_id=spouse.id), write=False) == "配**"

    done = db.run(lambda c: families.revoke_mutual_aid(c, now, holder_id=w.employee.id, member_id=spouse.id, actor="h"))
    assert done["status"] == "removed"
    assert db.run(lambda c: families.mutual_aid_relation(c, holder_id=w.employee.id, member_id=spouse.id), write=False) is None
    assert not db.run(lambda c: families.can_view(c, spouse.id, w.employee.id), write=False)
    assert db.run(lambda c: families.account_payers(c, keyring, spouse.id), write=False) == []  # revoked: no longer offered
    with pytest.raises(NotFound):
        db.run(lambda c: families.revoke_mutual_aid(c, now, holder_id=w.employee.id, member_id=spouse.id, actor="h"))
    assert grant(relation="parent")["relation"] == "parent"  # granting again reactivates the row


def id_number_of_adult(n, region="440300"):
    from datetime import date

    from yibao.domain.identity import make_id_number

    return make_id_number(region[:4] + "01", date(1980, 1, n), n)


def test_binding_a_card_is_what_condition_two_sees(db, keyring):
    """guardian_facts reads bindings through the e-card: unbinding everything fails condition 2 again."""
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    db.run(lambda c: bindings.unbind(c, db.clock(), holder_id=w.employee.id, pi_id="wechat", actor="h"))
    check = db.run(lambda c: families.checklist(c, db.clock(), guardian_id=w.employee.id, child_id=child.id), write=False)
    assert _met(check)[2] is False


def _settle_and_refund_items(db, w, patient_id, payer_id, payer, lines, items, between=None):
    """Settle the patient's visit from ``payer_id``'s account, refund ``items``: (the settlement, the legs given back,
    the payer's balance before the refund, after it)."""
    from yibao.domain.ledger import person_account
    from yibao.services.books import ledger

    now = db.clock()
    v = db.run(lambda c: visits.open_visit(c, now, institution=w.hospital, person_id=patient_id, kind="outpatient"))
    db.run(lambda c: visits.upload_lines(c, now, institution=w.hospital, visit_id=v.id, items=lines))
    present(db, w.hospital, payer_id, v.id, person_id=patient_id)
    doc = db.run(lambda c: settlement.settle(c, now, institution=w.hospital, visit_id=v.id, msgid=f"R-{payer}", actor="test",
                                             account=AccountRequest(use=True, payer=payer, payer_person_id=payer_id)))
    assert doc["acct_payer"] == payer and doc["acct_pay"] != "0.00" and doc["account_refusal"] is None
    balance = lambda: db.run(lambda c: ledger.available(c, person_account(payer_id)), write=False)  # noqa: E731
    if between is not None:
        between()
    before = balance()
    paid = {k: p for k, (p, _) in db.run(lambda c: settlement.legs_left(c, doc["setl_id"]), write=False).items()}
    priced = db.run(lambda c: settlement.price_items_refund(c, setl_id=doc["setl_id"], items=items, lock=False), write=False)
    db.run(lambda c: settlement.refund_items(c, now, setl_id=doc["setl_id"], refund_id="R1", items=items, legs=priced.legs,
                                             accumulator_delta=priced.accumulator_delta, actor="test"))
    left = db.run(lambda c: settlement.legs_left(c, doc["setl_id"]), write=False)
    for name in settlement.LEGS:  # paid = given back + remaining, each leg
        assert left[name] == (paid[name], priced.legs[name]) and paid[name] == priced.legs[name] + priced.remaining[name], name
    return priced, before, balance()


LINES_TWO = [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "50.00", "quantity": "1"},
             {"feedetl_sn": "2", "medins_list_codg": "C900", "name": "保健品", "unit_price": "30.00", "quantity": "1"}]


def test_items_of_a_payment_from_a_guardians_or_relatives_account_are_refunded_to_that_account(db, keyring):
    """The rest is priced again with the account that paid (not the patient's own, which a child has not): its share
    of the refunded self-paid item goes back to it, and no leg of the rest is priced higher."""
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    _link_account(db, w.employee.id, child.id)
    priced, before, after = _settle_and_refund_items(db, w, child.id, w.employee.id, "guardian", LINES_TWO, ["2"])
    assert priced.legs["account"] == 3000 and priced.legs["cash"] == 0 and after - before == 3000
    assert priced.remaining["account"] > 0

    spouse = enrol_adult(db, keyring, n=21, name="配偶甲")
    db.run(lambda c: families.grant_mutual_aid(c, keyring, db.clock(), holder_id=w.employee.id, relation="spouse",
                                               id_number=id_number_of_adult(21), name="配偶甲", actor="h"))
    revoke = lambda: db.run(lambda c: families.revoke_mutual_aid(c, db.clock(), holder_id=w.employee.id,  # noqa: E731
                                                                 member_id=spouse.id, actor="h"))
    # the grant revoked after the payment: the refund still goes to the relative's account, priced as it was paid
    priced, before, after = _settle_and_refund_items(db, w, spouse.id, w.employee.id, "family", LINES_TWO, ["2"], between=revoke)
    assert priced.legs["account"] == 3000 and priced.legs["cash"] == 0 and after - before == 3000

