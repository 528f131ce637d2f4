"""The catalogue as the platform uses it (SQLite and PostgreSQL): versions imported once and superseded by date, mappings,
and what each uploaded fee line is decided to be — exact to the fen, with the reason on the line — and settled as decided."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support import catalogue as tc
from tests.support.settlement import settle
from tests.support.world import seed
from yibao.domain.errors import Conflict, InputError
from yibao.formats import catalogue_csv
from yibao.services.care import visits
from yibao.services.care.views import line_view
from yibao.services.catalogue import mappings, versions


def _open(db, inst, person_id, kind="outpatient"):
    return db.run(lambda c: visits.open_visit(c, db.clock(), institution=inst, person_id=person_id, kind=kind))


def _upload(db, inst, visit_id, *lines):
    items = [{"feedetl_sn": str(i), "unit_price": "10.00", "quantity": "1", **ln} for i, ln in enumerate(lines, 1)]
    return [line_view(r) for r in db.run(lambda c: visits.upload_lines(c, db.clock(), institution=inst, visit_id=visit_id, items=items))]


def _money(view):
    return {k: view[k] for k in ("det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt")}


def test_import_is_idempotent_and_a_changed_version_is_refused(db, keyring):
    seed(db, keyring)  # loads the test catalogue 440300-T1 once
    file = catalogue_csv.parse("again.csv", tc.text("440300"))
    again = db.run(lambda c: versions.import_file(c, db.clock(), file=file, actor="test"))
    assert (again.created, again.version.ver, again.version.entries) == (False, "440300-T1", 18)
    assert len(db.run(lambda c: versions.versions(c, "440300"), write=False)) == 1
    changed = catalogue_csv.parse("changed.csv", tc.text("440300", body=tc.CSV.replace("头孢克肟胶囊,101,02,10.00", "头孢克肟胶囊,101,02,9.00")))
    with pytest.raises(Conflict) as caught:
        db.run(lambda c: versions.import_file(c, db.clock(), file=changed, actor="test"))
    assert caught.value.code == "catalogue_version_differs"


def test_a_new_version_supersedes_from_its_date_and_only_changed_entries_are_updated(db, keyring):
    w = seed(db, keyring)
    db.clock.advance(days=1)
    body = tc.CSV.replace("头孢克肟胶囊,101,02,10.00", "头孢克肟胶囊,101,02,8.00").replace(f"{tc.SUPPLEMENT},保健品,101,03,,,,,,,,,0,0,2026-01-01,\n", "")
    later = catalogue_csv.parse("t2.csv", tc.text("440300", ver="T2", begndate="2026-11-23", body=body))
    done = db.run(lambda c: versions.import_file(c, db.clock(), file=later, actor="test"))
    assert (done.created, done.added, done.changed, done.removed) == (True, 0, 1, 1)
    day1, day2 = db.clock().date() - timedelta(days=1), db.clock().date()
    assert db.run(lambda c: versions.in_force(c, "440300", day1), write=False).ver == "440300-T1"
    assert db.run(lambda c: versions.in_force(c, "440300", day2), write=False).ver == "440300-T2"
    page = db.run(lambda c: versions.query(c, region="440300", day=day2, updated_since=db.clock() - timedelta(hours=1)), write=False)
    assert [e["hilist_code"] for e in page["data"]] == [tc.CEFIXIME] and page["data"][0]["pric_uplmt_amt"] == "8.00"
    # A fee today is priced with T2: the cap is 8.00 now, and the removed supplement is no longer in the catalogue.
    v = _open(db, w.hospital, w.employee.id)
    cef, sup = _upload(db, w.hospital, v.id, {"med_list_codg": tc.CEFIXIME, "unit_price": "12.50", "prescription": True, "prescriber": "D1"},
                       {"med_list_codg": tc.SUPPLEMENT})
    assert (cef["pric_uplmt_amt"], cef["overlmt_amt"], cef["catalogue_version"]) == ("8.00", "4.50", "440300-T2")
    assert (sup["class"], sup["fulamt_ownpay_amt"]) == ("unlisted", "10.00") and "不在" not in sup["memo"] and "医保目录中无编码" in sup["memo"]


def test_mappings_point_only_at_catalogue_codes_and_are_replaced_in_place(db, keyring):
    w = seed(db, keyring)
    with pytest.raises(InputError) as caught:
        db.run(lambda c: mappings.put(c, db.clock(), institution=w.hospital, items=[
            {"medins_list_codg": "OK1", "med_list_codg": tc.SERVICE}, {"medins_list_codg": "BAD", "med_list_codg": "999999999999999"}]))
    assert (caught.value.field, caught.value.code) == ("mappings[1].med_list_codg", "not_in_catalogue")
    assert db.run(lambda c: mappings.lookup(c, institution_id=w.hospital.id, codes=["OK1"]), write=False) == []  # all or none
    db.run(lambda c: mappings.put(c, db.clock(), institution=w.hospital, items=[{"medins_list_codg": "A001", "med_list_codg": tc.SURGERY,
                                                                                 "medins_list_name": "手术费"}]))
    got = db.run(lambda c: mappings.lookup(c, institution_id=w.hospital.id, codes=["A001"]), write=False)
    assert [(m["med_list_codg"], m["medins_list_name"]) for m in got] == [(tc.SURGERY, "手术费")]


def test_each_line_is_decided_by_the_catalogue_exactly(db, keyring):
    """One visit at the level-3 hospital, every case once; amounts in yuan strings, exact."""
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id)
    lines = _upload(
        db, w.hospital, v.id,
        {"med_list_codg": "999999999999999"},  # 1 unknown national code
        {"medins_list_codg": "NOPE"},  # 2 the hospital's code, not mapped
        {"medins_list_codg": "XB01", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D1"},  # 3 above the cap
        {"med_list_codg": tc.IBUPROFEN, "unit_price": "18.60"},  # 4 its own ratio 0.05
        {"med_list_codg": tc.TWO_PER_VISIT, "quantity": "2"},  # 5 two: within the limit
        {"med_list_codg": tc.TWO_PER_VISIT, "quantity": "1"},  # 6 a third: beyond it
        {"med_list_codg": tc.INPATIENT_ONLY},  # 7 inpatient only, at an outpatient visit
        {"med_list_codg": tc.CEFIXIME},  # 8 a prescription drug without a prescription
        {"med_list_codg": tc.NEXT_MONTH},  # 9 valid from 2026-12-01
        {"med_list_codg": tc.ENDED},  # 10 ended 2026-06-30
        {"med_list_codg": tc.CHILDREN},  # 11 a child's syrup for an adult
        {"med_list_codg": tc.APPROVAL, "unit_price": "900.00"},  # 12 needs the hospital's approval: not given
        {"med_list_codg": tc.APPROVAL, "unit_price": "900.00", "hosp_appr_flag": True},  # 13 approved: capped at 800.00
        {"med_list_codg": tc.FUND},  # 14 a fund-ratio override: stored, the line priced as class A
    )
    by = {ln["feedetl_sn"]: ln for ln in lines}
    own = {"det_item_fee_sumamt": "10.00", "fulamt_ownpay_amt": "10.00", "overlmt_amt": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "0.00"}
    for sn in ("1", "2", "6", "7", "8", "9", "10", "11"):
        assert _money(by[sn]) == own, sn
        assert by[sn]["class"] == "unlisted", sn
    assert by["1"]["memo"].startswith("医保目录中无编码 999999999999999") and by["1"]["chrgitm_lv"] is None
    assert "本院项目 NOPE 未与医保目录对照" in by["2"]["memo"] and by["2"]["med_list_codg"] is None
    assert _money(by["3"]) == {"det_item_fee_sumamt": "25.00", "fulamt_ownpay_amt": "0.00", "overlmt_amt": "5.00", "preselfpay_amt": "2.00",
                               "inscp_scp_amt": "18.00"}
    assert (by["3"]["med_list_codg"], by["3"]["chrgitm_lv"], by["3"]["pric_uplmt_amt"], by["3"]["selfpay_prop"]) == (tc.CEFIXIME, "02", "10.00", "0.1000")
    assert _money(by["4"]) == {"det_item_fee_sumamt": "18.60", "fulamt_ownpay_amt": "0.00", "overlmt_amt": "0.00", "preselfpay_amt": "0.93",
                               "inscp_scp_amt": "17.67"} and by["4"]["selfpay_prop"] == "0.0500"
    assert _money(by["5"])["inscp_scp_amt"] == "20.00" and by["5"]["lmt_used_flag"] == "1"
    assert "每次就诊限2" in by["6"]["memo"] and by["6"]["lmt_used_flag"] == "1" and by["6"]["chrgitm_lv"] == "01"
    assert "限住院使用" in by["7"]["memo"]
    assert "凭医师处方" in by["8"]["memo"]
    assert "自 2026-12-01 起生效" in by["9"]["memo"]
    assert "已于 2026-06-30 失效" in by["10"]["memo"]
    assert "限14岁及以下使用" in by["11"]["memo"]
    assert "限医院审批后使用" in by["12"]["memo"] and by["12"]["fulamt_ownpay_amt"] == "900.00"
    assert _money(by["13"]) == {"det_item_fee_sumamt": "900.00", "fulamt_ownpay_amt": "0.00", "overlmt_amt": "100.00",
                                "preselfpay_amt": "80.00", "inscp_scp_amt": "720.00"}
    assert _money(by["14"])["inscp_scp_amt"] == "10.00"
    for ln in lines:  # every line says which catalogue decided it (the unmapped one: none was consulted)
        assert ln["catalogue_version"] == (None if ln["feedetl_sn"] == "2" else "440300-T1"), ln["feedetl_sn"]


def test_a_limited_line_is_refused_at_a_community_centre_and_paid_at_the_hospital(db, keyring):
    w = seed(db, keyring)
    rx = {"med_list_codg": tc.LEVEL2, "prescription": True, "prescriber": "D1"}
    (community,) = _upload(db, w.other_hospital, _open(db, w.other_hospital, w.employee.id).id, rx)
    assert community["class"] == "unlisted" and community["memo"] == "限二级及以上医疗机构使用，全自费 / limited to level-2 institutions and above: own expense"
    (hospital,) = _upload(db, w.hospital, _open(db, w.hospital, w.employee.id).id, rx)
    assert (hospital["class"], hospital["preselfpay_amt"], hospital["inscp_scp_amt"], hospital["lmt_used_flag"]) == ("B", "1.00", "9.00", "1")


def test_the_inpatient_only_item_is_paid_at_an_inpatient_stay(db, keyring):
    w = seed(db, keyring)
    (line,) = _upload(db, w.hospital, _open(db, w.hospital, w.employee.id, kind="inpatient").id, {"med_list_codg": tc.INPATIENT_ONLY})
    assert (line["class"], line["inscp_scp_amt"]) == ("A", "10.00")


@pytest.mark.parametrize("field", ["class", "price_cap", "self_pay_ratio", "chrgitm_lv", "selfpay_prop"])
def test_a_class_cap_or_ratio_sent_by_the_hospital_is_refused_never_trusted(db, keyring, field):
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id)
    with pytest.raises(InputError) as caught:
        _upload(db, w.hospital, v.id, {"med_list_codg": tc.SUPPLEMENT, field: "A" if field in ("class", "chrgitm_lv") else "0.00"})
    assert (caught.value.field, caught.value.code) == (f"lines[0].{field}", "decided_by_platform")
    assert db.run(lambda c: visits.list_lines(c, w.hospital.id, v.id), write=False) == []


def test_the_settlement_prices_what_was_decided_at_upload_even_after_a_new_version(db, keyring):
    """The tests' usual visit (诊查费 300.00, 头孢克肟 12.50×2 capped at 10.00, 保健品 50.00): the amounts the tests had
    before the catalogue, then a version that would price it otherwise changes nothing already uploaded."""
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id)
    db.run(lambda c: visits.upload_lines(c, db.clock(), institution=w.hospital, visit_id=v.id, items=[
        {"feedetl_sn": "1", "medins_list_codg": "A001", "unit_price": "300.00", "quantity": "1"},
        {"feedetl_sn": "2", "medins_list_codg": "XB01", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D1"},
        {"feedetl_sn": "3", "medins_list_codg": "C900", "unit_price": "50.00", "quantity": "1"}]))
    body = tc.CSV.replace(f"{tc.SERVICE},诊查费,201,01", f"{tc.SERVICE},诊查费,201,03")
    later = catalogue_csv.parse("t2.csv", tc.text("440300", ver="T2", begndate="2026-11-22", body=body))
    db.run(lambda c: versions.import_file(c, db.clock(), file=later, actor="test"))
    doc = settle(db, w.hospital, v.id, "M1", use=False)
    assert (doc["medfee_sumamt"], doc["fulamt_ownpay_amt"], doc["overlmt_selfpay"], doc["preselfpay_amt"], doc["inscp_scp_amt"]) == (
        "375.00", "50.00", "5.00", "2.00", "318.00")


def test_the_quantity_limit_counts_what_earlier_uploads_paid_and_not_what_was_revoked(db, keyring):
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id)

    def one(sn):
        items = [{"feedetl_sn": sn, "med_list_codg": tc.TWO_PER_VISIT, "unit_price": "10.00", "quantity": "1"}]
        rows = db.run(lambda c: visits.upload_lines(c, db.clock(), institution=w.hospital, visit_id=v.id, items=items))
        return next(line_view(r) for r in rows if r["feedetl_sn"] == sn)

    assert one("1")["class"] == one("2")["class"] == "A"
    assert one("3")["class"] == "unlisted"  # a third in the visit: beyond 2
    db.run(lambda c: visits.revoke_line(c, institution=w.hospital, visit_id=v.id, feedetl_sn="2"))
    assert one("4")["class"] == "A"  # the revoked one no longer counts; the refused third never did


def test_the_per_day_limit_counts_the_fee_s_day(db, keyring, clock):
    # 监护床位费 at most 1 a day: a second on the same day is own expense, the next day's is paid (exact fen).
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id, kind="inpatient")

    def one(sn, **kw):
        items = [{"feedetl_sn": sn, "med_list_codg": tc.ONE_A_DAY, "unit_price": "60.00", "quantity": "1", **kw}]
        rows = db.run(lambda c: visits.upload_lines(c, db.clock(), institution=w.hospital, visit_id=v.id, items=items))
        return next(line_view(r) for r in rows if r["feedetl_sn"] == sn)

    first, second = one("1"), one("2")
    assert (first["class"], first["inscp_scp_amt"], first["lmt_used_flag"]) == ("A", "60.00", "1")
    assert (second["class"], second["fulamt_ownpay_amt"], second["inscp_scp_amt"]) == ("unlisted", "60.00", "0.00")
    assert second["memo"].startswith("每日限1，本行超出")
    clock.now += timedelta(days=1)
    third = one("3")  # no fee time: now, the next day
    assert (third["class"], third["inscp_scp_amt"]) == ("A", "60.00")
    fourth = one("4", fee_ocur_time=(clock.now - timedelta(days=1)).isoformat())  # dated back to the first day: still full
    assert fourth["class"] == "unlisted" and "每日限1" in fourth["memo"]


def test_a_fee_time_in_the_future_or_before_the_visit_is_refused_naming_the_field(db, keyring):
    w = seed(db, keyring)
    v = _open(db, w.hospital, w.employee.id)
    for when in ("2026-11-23 09:00:00", "2026-11-21T23:00:00+08:00"):
        with pytest.raises(InputError) as caught:
            _upload(db, w.hospital, v.id, {"med_list_codg": tc.SERVICE, "fee_ocur_time": when})
        assert (caught.value.field, caught.value.code) == ("lines[0].fee_ocur_time", "fee_time_outside_visit")
