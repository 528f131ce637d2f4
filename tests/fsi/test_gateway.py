"""The national interface envelope over HTTP, on SQLite and PostgreSQL: an outpatient day and an inpatient stay give
exactly the REST path's amounts for the same items; every bad envelope is answered infcode -1 in words."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.support import fsi
from tests.support.api import LINES, OPERATOR, bearer, key
from tests.support.identity import enrol_adult, id_number_of
from tests.support.presence import present
from tests.support.world import credit
from yibao.formats import fsi as wire
from yibao.fsi.transactions import AMOUNTS

INPATIENT_LINES = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "手术", "unit_price": "5000.00", "quantity": "1"},
                   {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2",
                    "prescription": True, "prescriber": "D0042"}]
INPATIENT_FEEDETAIL = [
    {"feedetl_sn": "1", "medins_list_codg": "A010", "medins_list_name": "手术", "pric": Decimal("5000.00"), "cnt": 1},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "medins_list_name": "头孢克肟胶囊", "pric": Decimal("12.50"), "cnt": 2,
     "rxno": "RX2", "bilg_dr_codg": "D0042"},
]


def twins(db, keyring, n):
    """Two employees alike in every priced respect, each with ¥3000 in the account: one for REST, one for the envelope."""
    a, b = (enrol_adult(db, keyring, n=n + i, name=("甲双胞", "乙双胞")[i]) for i in (0, 1))
    for p in (a, b):
        credit(db, p.id, 300000, f"twin:{p.id}")
    return a, b


def rest(client, world, method, path, body=None):
    r = client.request(method, path, json=body, headers={**bearer(world.hospital_credential), **key()})
    assert r.status_code in (200, 201), r.text
    return r.json()


def same_amounts(national: dict, rest_doc: dict) -> None:
    """Every amount of the envelope's setlinfo is the REST document's, to the fen (numbers with two decimals there)."""
    for k in AMOUNTS:
        if k == "hosp_part_amt":
            assert national[k] == Decimal("0.00")
            continue
        assert national[k] == Decimal(rest_doc[k]), (k, national[k], rest_doc[k])
        assert isinstance(national[k], Decimal) and national[k].as_tuple().exponent == -2, k
    assert national["pool_prop_selfpay"] == Decimal(rest_doc["pool_prop_selfpay"])


def test_an_outpatient_day_gives_the_rest_amounts(client, world, db, keyring, hospital, clock):
    mine, theirs = twins(db, keyring, 21)
    # REST: register, upload, the card read with its PIN, settle with the account.
    vid = rest(client, world, "POST", "/api/v1/his/visits", {"psn_no": theirs.id, "kind": "outpatient"})["mdtrt_id"]
    rest(client, world, "POST", f"/api/v1/his/visits/{vid}/fee-lines", {"lines": LINES})
    present(db, world.hospital, theirs.id, vid)
    rest_doc = rest(client, world, "POST", f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}})

    # The envelope: 1101 by ID number answers what the REST look-up answers, masked, no balance.
    info = hospital.ok("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": id_number_of(1)}})
    looked = rest(client, world, "POST", "/api/v1/his/persons/lookup", {"credential_type": "id_number", "credential_no": id_number_of(1)})
    assert info["baseinfo"]["psn_no"] == looked["psn_no"] and info["baseinfo"]["psn_name"] == looked["psn_name"]
    assert info["insuinfo"][0]["insutype"] == "310" and info["insuinfo"][0]["balc"] is None and info["idetinfo"] == []
    assert info["baseinfo"]["certno"] is None

    mdtrt = hospital.ok("2201", {"data": {"psn_no": mine.id, "insutype": "310", "begntime": "2026-11-22 17:00:00"}})["data"]["mdtrt_id"]
    hospital.ok("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt, "psn_no": mine.id, "med_type": "11"}, "diseinfo": []})
    lines = [{**line, "mdtrt_id": mdtrt, "psn_no": mine.id} for line in fsi.FEEDETAIL]
    result = hospital.ok("2204", {"feedetail": lines})["result"]
    assert [r["det_item_fee_sumamt"] for r in result] == [Decimal("300.00"), Decimal("25.00")]
    # The catalogue decided each line (the hospital sent codes only); the same per-line result as REST's upload.
    rest_lines = {r["feedetl_sn"]: r for r in rest(client, world, "GET", f"/api/v1/his/visits/{vid}")["lines"]}
    for r in result:
        assert r["chrgitm_lv"] == rest_lines[r["feedetl_sn"]]["chrgitm_lv"]
        for k in ("pric_uplmt_amt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"):
            assert (None if r[k] is None else f"{r[k]:.2f}") == rest_lines[r["feedetl_sn"]][k], k
    assert (result[1]["chrgitm_lv"], result[1]["pric_uplmt_amt"], result[1]["overlmt_amt"]) == ("02", Decimal("10.00"), Decimal("5.00"))
    assert result[1]["det_item_fee_sumamt"] == (result[1]["fulamt_ownpay_amt"] + result[1]["overlmt_amt"] + result[1]["preselfpay_amt"]
                                              + result[1]["inscp_scp_amt"])
    data = {"psn_no": mine.id, "mdtrt_id": mdtrt, "med_type": "11", "medfee_sumamt": Decimal("325.00"), "psn_setlway": "01",
            "acct_used_flag": "1", "insutype": "310", "mdtrt_cert_type": "02", "mdtrt_cert_no": "x"}
    # Nobody present: the account may not pay, through the envelope as through REST.
    hospital.refused("2206", {"data": data}, "presence_required", "acct_used_flag")
    hospital.refused("2207", {"data": data}, "presence_required")
    present(db, world.hospital, mine.id, mdtrt)
    pre = hospital.ok("2206", {"data": data})["setlinfo"]
    msgid = hospital.msgid()
    settled = hospital.ok("2207", {"data": data}, msgid=msgid)
    same_amounts(settled["setlinfo"], rest_doc)
    same_amounts(pre, rest_doc)
    assert settled["setlinfo"]["medins_setl_id"] == msgid and settled["setlinfo"]["med_type"] == "11"
    assert {d["fund_pay_type"] for d in settled["setldetail"]} == {"310100"}
    setl_id = settled["setlinfo"]["setl_id"]
    assert hospital.ok("5203", {"data": {"setl_id": setl_id}})["setlinfo"] == settled["setlinfo"]
    assert [r["feedetl_sn"] for r in hospital.ok("5204", {"data": {"setl_id": setl_id}})["feedetail"]] == ["1", "2"]

    # 2208 cancels it as REST cancels: the same amounts given back.
    rest_cancel = rest(client, world, "POST", f"/api/v1/his/settlements/{rest_doc['setl_id']}/cancel", {})
    cancelled = hospital.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": mine.id}})["setlinfo"]
    same_amounts(cancelled, rest_cancel)
    assert cancelled["setl_stas"] == "0"

    # 2601 of another settlement: the visit settled again (a new message), then reversed by that message id.
    present(db, world.hospital, mine.id, mdtrt)
    other = hospital.msgid()
    again = hospital.ok("2207", {"data": data}, msgid=other)["setlinfo"]
    same_amounts(again, rest_doc)
    reversed_ = hospital.ok("2601", {"data": {"psn_no": mine.id, "omsgid": other, "oinfno": "2207"}})["data"]
    assert reversed_["status"] == "reversed" and reversed_["setl_id"] == again["setl_id"]
    assert rest(client, world, "GET", f"/api/v1/his/settlements/{again['setl_id']}")["status"] == "cancelled"
    assert client.get("/api/v1/admin/ledger/totals", headers=OPERATOR).json()["balanced"] is True
    hospital.ok("9002", {"signOut": {"sign_no": hospital.sign_no, "opter_no": "001"}})
    hospital.refused("5203", {"data": {"setl_id": setl_id}}, "sign_no", "9001")


def test_an_inpatient_stay_gives_the_rest_amounts(client, world, db, keyring, hospital):
    mine, theirs = twins(db, keyring, 25)
    vid = rest(client, world, "POST", "/api/v1/his/visits", {"psn_no": theirs.id, "kind": "inpatient"})["mdtrt_id"]
    rest(client, world, "POST", f"/api/v1/his/visits/{vid}/fee-lines", {"lines": INPATIENT_LINES})
    rest(client, world, "POST", f"/api/v1/his/visits/{vid}/discharge", {})
    present(db, world.hospital, theirs.id, vid)
    rest_doc = rest(client, world, "POST", f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}})

    admission = hospital.msgid()
    admitted = hospital.ok("2401", {"mdtrtinfo": {"psn_no": mine.id, "insutype": "310", "med_type": "21", "ipt_no": "ZY001"}, "diseinfo": []},
                           msgid=admission)
    stay = admitted["result"]["mdtrt_id"]
    assert admitted["result"]["ipt_otp_no"] == "ZY001"
    hospital.ok("2301", {"feedetail": [{**line, "mdtrt_id": stay} for line in INPATIENT_FEEDETAIL]})
    data = {"psn_no": mine.id, "mdtrt_id": stay, "medfee_sumamt": Decimal("5025.00"), "psn_setlway": "01", "acct_used_flag": "1",
            "insutype": "310"}
    # yibao settles a stay after discharge (services/care/settlement.py): before it, the envelope says so.
    hospital.refused("2303", {"data": data}, "not_discharged")
    hospital.ok("2402", {"dscginfo": {"mdtrt_id": stay, "psn_no": mine.id, "endtime": "2026-11-22 17:00:00"}})
    present(db, world.hospital, mine.id, stay)
    same_amounts(hospital.ok("2303", {"data": data})["setlinfo"], rest_doc)
    msgid = hospital.msgid()
    settled = hospital.ok("2304", {"data": data}, msgid=msgid)
    same_amounts(settled["setlinfo"], rest_doc)
    assert settled["setlinfo"]["med_type"] == "21"
    # 2304 reversed by its message id, then the stay's discharge undone and its lines revoked, the admission reversed (2601 of 2401).
    assert hospital.ok("2601", {"data": {"omsgid": msgid, "oinfno": "2304"}})["data"]["status"] == "reversed"
    hospital.ok("2405", {"data": {"mdtrt_id": stay}})
    hospital.ok("2302", {"data": [{"mdtrt_id": stay, "feedetl_sn": "0000"}]})
    out = hospital.ok("2601", {"data": {"omsgid": admission, "oinfno": "2401"}})
    assert out["data"]["mdtrt_id"] == stay
    assert rest(client, world, "GET", f"/api/v1/his/visits/{stay}")["status"] == "cancelled"


def test_the_same_msgid_gets_the_same_answer_and_another_body_is_refused(hospital, world):
    msgid = hospital.msgid()
    first = hospital.raw("2201", {"data": {"psn_no": world.employee.id}}, msgid=msgid)
    again = hospital.raw("2201", {"data": {"psn_no": world.employee.id}}, msgid=msgid)
    assert first == again and first["infcode"] == 0
    hospital.refused("2201", {"data": {"psn_no": world.retiree.id}}, "msgid", "另一笔", msgid=msgid)


def _headers(h, **changes):
    at = h.clock()
    headers = {"Content-Type": "application/json", **wire.gateway_headers(h.sender.fixmedins_code, h.sender.token, at)}
    headers.update(changes)
    return headers


def test_bad_envelopes_are_answered_in_words(hospital, world, clock):
    ok = {"data": {"psn_no": world.employee.id}}
    env = wire.envelope(hospital.sender, "2201", ok, clock(), msgid=hospital.msgid(), sign_no=hospital.sign_no)
    for missing in ("infno", "msgid", "inf_time", "fixmedins_code", "input"):
        broken = {k: v for k, v in env.items() if k != missing}
        hospital.refused("2201", ok, missing, "缺少必填字段", envelope=broken)
    hospital.refused("2201", ok, "msgid", "yyyyMMddHHmmss", envelope={**env, "msgid": "H44030001-not-a-msgid"})
    hospital.refused("2201", ok, "msgid", envelope={**env, "msgid": f"{world.hospital.id}20261399250000"})
    hospital.refused("2201", ok, "x-tif-signature", "签名", headers=_headers(hospital, **{"x-tif-signature": "0" * 64}))
    old = wire.gateway_headers(hospital.sender.fixmedins_code, hospital.sender.token, clock() - timedelta(seconds=301))
    hospital.refused("2201", ok, "x-tif-timestamp", "300", headers={"Content-Type": "application/json", **old})
    replay = _headers(hospital)
    assert hospital.raw("2201", ok, headers=replay)["infcode"] == 0
    hospital.refused("2201", ok, "x-tif-nonce", "重放", headers=replay)
    # A refused request's nonce is used all the same: replayed later (say once the cause is gone), it is a replay.
    refused_once, nobody = _headers(hospital), {"data": {"psn_no": "NOBODY"}}
    env_nobody = wire.envelope(hospital.sender, "2201", nobody, clock(), msgid=hospital.msgid(), sign_no=hospital.sign_no)
    hospital.refused("2201", nobody, "psn_no", "不存在", headers=refused_once, envelope=env_nobody)
    hospital.refused("2201", nobody, "x-tif-nonce", headers=refused_once, envelope=env_nobody)
    hospital.refused("9999", ok, "infno", "不支持的交易编号")
    hospital.refused("2201", ok, "body", "JSON", body=b"{not json")
    hospital.refused("2201", ok, "body", "JSON", body="不是JSON".encode())
    hospital.refused("2201", ok, "x-tif-paasid", headers={"Content-Type": "application/json"})
    wrong = fsi.his(hospital.client, world.hospital, clock, token="not-the-token-at-all-000")
    wrong.refused("2201", ok, "x-tif-signature")
    # another institution's paasid (no gateway credential) and a field of the wrong type
    other = fsi.his(hospital.client, world.other_hospital, clock, token="whatever-token-00000000")
    other.refused("2201", ok, "x-tif-paasid")
    hospital.refused("2201", ok, "opter_type", envelope={**env, "msgid": hospital.msgid(), "opter_type": 7})


def test_service_refusals_name_the_national_field(hospital, world):
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    bad = [{**fsi.FEEDETAIL[0], "mdtrt_id": vid, "pric": Decimal("12.345")}]
    hospital.refused("2204", {"feedetail": bad}, "input.feedetail[0].pric")
    huge = [{**fsi.FEEDETAIL[0], "mdtrt_id": vid, "pric": Decimal("1E+999999999")}]  # never written out digit by digit
    hospital.refused("2204", {"feedetail": huge}, "input.feedetail[0].pric", "超出范围")
    hospital.refused("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid, "det_item_fee_sumamt": Decimal("1.00")}]},
                     "det_item_fee_sumamt", "单价×数量")
    # What the catalogue decides is never taken from the HIS: a class, a cap or a ratio sent is refused by name.
    for name, value in (("chrgitm_lv", "01"), ("pric_uplmt_amt", Decimal("999.00")), ("selfpay_prop", Decimal("0"))):
        hospital.refused("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid, name: value}]},
                         f"input.feedetail[0].{name}", "decided_by_platform")
    unknown = hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "feedetl_sn": "9", "mdtrt_id": vid, "medins_list_codg": "NOPE1"}]})
    assert unknown["result"][0]["fulamt_ownpay_amt"] == Decimal("300.00") and unknown["result"][0]["memo"]  # unmapped: own expense, why
    hospital.ok("2205", {"data": {"mdtrt_id": vid, "feedetl_sn": "9"}})
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    hospital.refused("2206", {"data": {"mdtrt_id": vid, "medfee_sumamt": Decimal("1.00")}}, "medfee_sumamt", "不符")
    hospital.refused("2201", {"data": {"psn_no": world.employee.id, "med_type": "14"}}, "med_type", "门诊慢特病")
    hospital.refused("2201", {"data": {"psn_no": world.employee.id, "insutype": "390"}}, "insutype")
    hospital.refused("2201", {"data": {"psn_no": world.employee.id}}, "insuplc_admdvs", "440300", insuplc_admdvs="330200")
    hospital.refused("2207", {"data": {"mdtrt_id": "nope"}}, "mdtrt_id", "不存在")
    hospital.refused("2601", {"data": {"omsgid": "x", "oinfno": "2201"}}, "oinfno")


def test_a_card_read_reveals_no_more_than_rest(client, hospital, world, db, keyring):
    from tests.support.presence import card_with_pin

    card = card_with_pin(db, keyring, world.employee.id)
    info = hospital.ok("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card}})
    looked = client.post("/api/v1/his/persons/lookup", json={"credential_type": "card", "credential_no": card},
                         headers=bearer(world.hospital_credential)).json()
    shown = json.dumps(info, default=str)
    assert info["baseinfo"]["psn_name"] == looked["psn_name"]
    assert "balc" not in looked and info["insuinfo"][0]["balc"] is None
    assert id_number_of(1) not in shown and id_number_of(1)[6:14] not in shown  # neither the number nor the birth date
    hospital.refused("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "NOSUCHCARD"}}, "mdtrt_cert_no", "未找到")


@pytest.mark.parametrize("infno", ["5206"])
def test_the_years_totals_need_the_holder_present(hospital, world, db, infno):
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    hospital.refused(infno, {"data": {"psn_no": world.employee.id, "mdtrt_id": vid}}, "presence_required")
    present(db, world.hospital, world.employee.id, vid)
    cum = hospital.ok(infno, {"data": {"psn_no": world.employee.id, "mdtrt_id": vid, "cum_ym": "202611"}})["cuminfo"]
    assert {c["cum_type_code"] for c in cum} >= {"pool_fund_paid", "outpatient_deductible_used"}
    hospital.refused(infno, {"data": {"psn_no": world.employee.id, "mdtrt_id": vid, "cum_ym": "2026-11"}}, "cum_ym", "yyyyMM")


def test_the_e_voucher_shown_as_a_payment_code_is_the_holders_presence(hospital, world, db, keyring):
    from tests.support.identity import ecard, name_of
    from yibao.services.payments import paycodes

    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=world.employee.id, actor="test")).code

    def visit():
        vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
        hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
        return {"mdtrt_id": vid, "acct_used_flag": "1", "mdtrt_cert_type": "01", "mdtrt_cert_no": code}

    data = visit()
    pre = hospital.ok("2206", {"data": data})["setlinfo"]  # the scan: used up here, the presence kept for this visit
    settled = hospital.ok("2207", {"data": data})["setlinfo"]
    assert settled["acct_pay"] > 0 and settled["acct_pay"] == pre["acct_pay"]
    hospital.refused("2207", {"data": visit()}, "mdtrt_cert_no")  # the code is used: it pays no other visit


def test_undoing_registrations_admissions_and_a_mismatched_settlement(client, hospital, world):
    # 2202: a registration with no standing lines is cancelled; with lines it must lose them first.
    vid = hospital.ok("2201", {"data": {"psn_no": world.resident.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    hospital.refused("2202", {"data": {"mdtrt_id": vid}}, "visit_has_lines")
    # 2207 with a total that is not the lines': refused, and nothing settled (the unit rolled back).
    hospital.refused("2207", {"data": {"mdtrt_id": vid, "medfee_sumamt": Decimal("1.00")}}, "medfee_sumamt")
    assert rest(client, world, "GET", f"/api/v1/his/visits/{vid}")["status"] == "open"
    hospital.ok("2205", {"data": {"mdtrt_id": vid, "feedetl_sn": "0000"}})
    hospital.ok("2202", {"data": {"mdtrt_id": vid}})
    assert rest(client, world, "GET", f"/api/v1/his/visits/{vid}")["status"] == "cancelled"
    hospital.refused("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]}, "visit_cancelled")
    # An inpatient stay settled and cancelled with 2305, the discharge undone (2405), the lines revoked, the admission undone (2404).
    stay = hospital.ok("2401", {"mdtrtinfo": {"psn_no": world.resident.id, "med_type": "21"}})["result"]["mdtrt_id"]
    hospital.ok("2301", {"feedetail": [{**INPATIENT_FEEDETAIL[0], "mdtrt_id": stay}]})
    hospital.refused("2202", {"data": {"mdtrt_id": stay}}, "2404")
    hospital.ok("2402", {"dscginfo": {"mdtrt_id": stay}})
    setl = hospital.ok("2304", {"data": {"mdtrt_id": stay, "medfee_sumamt": Decimal("5000.00")}})["setlinfo"]
    hospital.refused("2208", {"data": {"setl_id": setl["setl_id"]}}, "2305")
    assert hospital.ok("2305", {"data": {"setl_id": setl["setl_id"]}})["setlinfo"]["setl_stas"] == "0"
    hospital.ok("2405", {"data": {"mdtrt_id": stay}})
    hospital.ok("2302", {"data": [{"mdtrt_id": stay, "feedetl_sn": "1"}]})
    hospital.ok("2404", {"data": {"mdtrt_id": stay}})
    assert rest(client, world, "GET", f"/api/v1/his/visits/{stay}")["status"] == "cancelled"
    # The undone admission was the year's latest: the next stay is the first again (its deductible is a first stay's).
    again = hospital.ok("2401", {"mdtrtinfo": {"psn_no": world.resident.id, "med_type": "21"}})["result"]["mdtrt_id"]
    assert rest(client, world, "GET", f"/api/v1/his/visits/{again}")["admission_number"] == 1
