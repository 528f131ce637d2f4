"""The catalogue over the HIS API (SQLite and PostgreSQL): mappings uploaded once per key and looked up, the catalogue a
page at a time, fee lines answered with the national per-line result, and a class sent by a hospital refused."""

from __future__ import annotations

import uuid

from tests.support import catalogue as tc
from tests.support.api import his, post


def _visit(client, world):
    r = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "outpatient"}, his(world))
    assert r.status_code == 201, r.text
    return r.json()["mdtrt_id"]


def test_fee_lines_are_answered_with_the_national_per_line_result(client, world):
    vid = _visit(client, world)
    r = post(client, f"/api/v1/his/visits/{vid}/fee-lines", {"lines": [
        {"feedetl_sn": "1", "medins_list_codg": "XB01", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D1",
         "fee_ocur_time": "2026-11-22 17:00:00"},
        {"feedetl_sn": "2", "medins_list_codg": "ZZ-NOT-MAPPED", "name": "院内自制", "unit_price": "7.00", "quantity": "1"},
    ]}, his(world))
    assert r.status_code == 200, r.text
    first, second = r.json()["lines"]
    national = {k: first[k] for k in ("feedetl_sn", "det_item_fee_sumamt", "cnt", "pric", "pric_uplmt_amt", "selfpay_prop", "fulamt_ownpay_amt",
                                      "overlmt_amt", "preselfpay_amt", "inscp_scp_amt", "chrgitm_lv", "lmt_used_flag", "med_list_codg")}
    assert national == {"feedetl_sn": "1", "det_item_fee_sumamt": "25.00", "cnt": "2", "pric": "12.50", "pric_uplmt_amt": "10.00",
                        "selfpay_prop": "0.1000", "fulamt_ownpay_amt": "0.00", "overlmt_amt": "5.00", "preselfpay_amt": "2.00",
                        "inscp_scp_amt": "18.00", "chrgitm_lv": "02", "lmt_used_flag": "0", "med_list_codg": tc.CEFIXIME}
    assert first["fee_ocur_time"] == "2026-11-22T09:00:00+00:00"  # Beijing 17:00 is 09:00 UTC
    assert (second["fulamt_ownpay_amt"], second["chrgitm_lv"], second["name"]) == ("7.00", None, "院内自制")
    assert second["memo"] == ("本院项目 ZZ-NOT-MAPPED 未与医保目录对照，全自费 / the institution's item ZZ-NOT-MAPPED is not mapped to the catalogue: "
                              "own expense")


def test_a_hospital_that_sends_a_class_is_refused_naming_the_field(client, world):
    vid = _visit(client, world)
    for field, value in (("class", "A"), ("price_cap", "99.00"), ("self_pay_ratio", "0.00")):
        line = {"feedetl_sn": "1", "medins_list_codg": "C900", "unit_price": "50.00", "quantity": "1", field: value}
        r = post(client, f"/api/v1/his/visits/{vid}/fee-lines", {"lines": [line]}, his(world))
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert (err["field"], err["code"]) == (f"lines[0].{field}", "decided_by_platform")
        assert "由医保平台按医保目录确定" in err["message_zh"] and "never taken from the institution" in err["message_en"]
    assert client.get(f"/api/v1/his/visits/{vid}", headers=his(world)).json()["lines"] == []


def test_mappings_are_uploaded_once_per_key_and_looked_up(client, world):
    body = {"mappings": [{"medins_list_codg": "H-REG-01", "medins_list_name": "挂号诊查", "med_list_codg": tc.SERVICE}]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/api/v1/his/item-mappings", json=body, headers={**his(world), **key})
    again = client.post("/api/v1/his/item-mappings", json=body, headers={**his(world), **key})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = client.post("/api/v1/his/item-mappings", json={"mappings": [{**body["mappings"][0], "medins_list_name": "另一个"}]},
                        headers={**his(world), **key})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    got = client.get("/api/v1/his/item-mappings", params={"medins_list_codg": "H-REG-01"}, headers=his(world)).json()["mappings"]
    assert [(m["medins_list_codg"], m["medins_list_name"], m["med_list_codg"]) for m in got] == [("H-REG-01", "挂号诊查", tc.SERVICE)]
    # Another institution sees only its own mappings.
    assert client.get("/api/v1/his/item-mappings", params={"medins_list_codg": "H-REG-01"}, headers=his(world, other=True)).json() == {"mappings": []}
    bad = post(client, "/api/v1/his/item-mappings", {"mappings": [{"medins_list_codg": "X", "med_list_codg": "123456789012345"}]}, his(world))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "mappings[0].med_list_codg"


def test_the_catalogue_is_read_a_page_at_a_time(client, world):
    r = client.get("/api/v1/his/catalogue", params={"page_size": 5, "page_num": 2}, headers=his(world))
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["ver"], page["recordCounts"], page["pages"], len(page["data"])) == ("440300-T1", 18, 4, 5)
    one = client.get("/api/v1/his/catalogue", params={"hilist_code": tc.APPROVAL}, headers=his(world)).json()["data"]
    assert one == [{"hilist_code": tc.APPROVAL, "hilist_name": "人工晶体", "list_type": "301", "chrgitm_lv": "02", "pric_uplmt_amt": "800.00",
                    "selfpay_prop": None, "fund_prop": None, "lmt_used_flag": "1", "lmt_med_type": [], "lmt_medins_lv": None, "lmt_cnt": None, "lmt_cnt_day": None,
                    "lmt_age_min": None, "lmt_age_max": None, "hosp_appr_flag": "1", "rx_flag": "0", "item_category": [], "begndate": "2026-01-01", "enddate": None,
                    "updt_time": one[0]["updt_time"]}]
    later = client.get("/api/v1/his/catalogue", params={"updated_since": "2026-11-22T18:00:00"}, headers=his(world)).json()
    assert later["recordCounts"] == 0  # Beijing 18:00 is after the import at 09:00 UTC (17:00 Beijing)
    earlier = client.get("/api/v1/his/catalogue", params={"updated_since": "2026-11-22T16:59:00"}, headers=his(world)).json()
    assert earlier["recordCounts"] == 18
