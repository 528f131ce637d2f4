"""A hospital reconciles with the platform (3201 对总账, 3202 对明细账; docs/reconciliation-his.md), over the national
envelope and REST, on SQLite and PostgreSQL: totals balanced and not (saying which and both figures), a cancellation
counted on its own day, a reversal never, the detail file compared row by row (missing on each side, an amount altered,
a row sent twice) with the result file fetched by 9102, and another hospital's settlements never counted."""

from __future__ import annotations

import base64
from decimal import Decimal

from tests.support import fsi
from tests.support.api import bearer
from yibao.domain.his_statement import FORWARD, REVERSE, Row
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats import his_statement as fmt

DAY1, DAY2 = "2026-11-22", "2026-11-23"  # Beijing days: the test clock starts 2026-11-22 17:00 Beijing


def settle(his, person, lines=fsi.FEEDETAIL):
    vid = his.ok("2201", {"data": {"psn_no": person.id}})["data"]["mdtrt_id"]
    his.ok("2204", {"feedetail": [{**line, "mdtrt_id": vid} for line in lines]})
    msgid = his.msgid()
    return his.ok("2207", {"data": {"mdtrt_id": vid}}, msgid=msgid)["setlinfo"], msgid


def row(s, flag=FORWARD) -> Row:
    sign = -1 if flag == REVERSE else 1
    fen = {k: sign * parse_yuan(format(s[k], "f")) for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")}
    return Row(s["setl_id"], s["mdtrt_id"], s["psn_no"], fen["medfee_sumamt"], fen["fund_pay_sumamt"], fen["acct_pay"], flag)


def totals_payload(rows, begin, end, insutype="310", clr_type="11", **override):
    t = fmt.Totals.of(rows)
    return {"data": {"insutype": insutype, "clr_type": clr_type, "setl_optins": "440300", "stmt_begndate": begin, "stmt_enddate": end,
                     "medfee_sumamt": Decimal(format_yuan(t.medfee)), "fund_pay_sumamt": Decimal(format_yuan(t.fund)),
                     "acct_pay": Decimal(format_yuan(t.acct)), "fixmedins_setl_cnt": t.count, **override}}


def test_totals_and_detail_over_the_national_envelope(client, hospital, world, db, keyring, clock):
    from tests.support.world import credit

    credit(db, world.employee.id, 5000, "stmt")
    a, _ = settle(hospital, world.employee)
    b, _ = settle(hospital, world.employee, fsi.FEEDETAIL[:1])
    c, _ = settle(hospital, world.retiree)
    resident, _ = settle(hospital, world.resident)  # 390: another 3201 of its own
    gone, gone_msgid = settle(hospital, world.employee, fsi.FEEDETAIL[1:])
    hospital.ok("2601", {"data": {"omsgid": gone_msgid, "oinfno": "2207"}})  # 冲正: never happened
    day1 = [row(a), row(b), row(c)]

    out = hospital.ok("3201", totals_payload(day1, DAY1, DAY1))["stmtinfo"]
    assert out == {"setl_optins": "440300", "stmt_rslt": "0", "stmt_rslt_dscr": "对账平 balanced"}
    assert hospital.ok("3201", totals_payload([row(resident)], DAY1, DAY1, insutype="390"))["stmtinfo"]["stmt_rslt"] == "0"
    assert hospital.ok("3201", totals_payload([], DAY1, DAY1, clr_type="21"))["stmtinfo"]["stmt_rslt"] == "0"  # no inpatients
    # The hospital's fund total a fen off, and one settlement too many: both named, both figures said.
    fund = fmt.Totals.of(day1).fund
    off = hospital.ok("3201", totals_payload(day1, DAY1, DAY1, fund_pay_sumamt=Decimal(format_yuan(fund + 1)), fixmedins_setl_cnt=4))["stmtinfo"]
    assert off["stmt_rslt"] == "1"
    assert f"基金支付总额：医院 {format_yuan(fund + 1)}，医保 {format_yuan(fund)}" in off["stmt_rslt_dscr"]
    assert "结算笔数：医院 4，医保 3" in off["stmt_rslt_dscr"] and "医疗费总额" not in off["stmt_rslt_dscr"]

    # The next Beijing day (01:00): b is cancelled — a reverse row on day 2 only; day 1 is not rewritten.
    clock.advance(hours=8)
    hospital.ok("2208", {"data": {"setl_id": b["setl_id"]}})
    assert hospital.ok("3201", totals_payload(day1, DAY1, DAY1))["stmtinfo"]["stmt_rslt"] == "0"
    assert hospital.ok("3201", totals_payload([row(b, REVERSE)], DAY2, DAY2))["stmtinfo"]["stmt_rslt"] == "0"
    both = hospital.ok("3201", totals_payload([row(a), row(c)], DAY1, DAY2))["stmtinfo"]  # net: b and its cancellation cancel out
    assert both["stmt_rslt"] == "0", both

    # 3202 for day 1 (every insurance type: no insutype in 3202): a right; b altered (the hospital's fee a yuan more); a
    # fake row; a sent twice; c and the resident's missing.
    altered = Row(b["setl_id"], b["mdtrt_id"], b["psn_no"], row(b).medfee + 100, row(b).fund, row(b).acct, FORWARD)
    fake = Row("S-NOT-OURS", a["mdtrt_id"], a["psn_no"], 1000, 500, 0, FORWARD)
    sent = [row(a), altered, fake, row(a)]
    upload = hospital.ok("9101", {"fsUploadIn": {"in": base64.b64encode(fmt.write_detail(sent, clock())).decode(), "filename": "detail.txt.zip",
                                                 "fixmedins_code": world.hospital.id}})
    t = fmt.Totals.of(sent)
    ask = {"setl_optins": "440300", "file_qury_no": upload["file_qury_no"], "stmt_begndate": DAY1, "stmt_enddate": DAY1,
           "medfee_sumamt": Decimal(format_yuan(t.medfee)), "fund_pay_sumamt": Decimal(format_yuan(t.fund)), "cash_payamt": Decimal("0.00"),
           "fixmedins_setl_cnt": t.count, "clr_type": "11"}
    # A file that does not add up to the totals declared beside it is refused, naming the total.
    assert "fixmedins_setl_cnt" in hospital.refused("3202", {"data": {**ask, "fixmedins_setl_cnt": t.count - 1}}, "与明细文件合计不符")
    out = hospital.ok("3202", {"data": ask})
    assert (out["stmt_rslt"], out["balanced_cnt"], out["unbalanced_cnt"]) == ("1", 1, 5)
    got = hospital.ok("9102", {"fsDownloadIn": {"file_qury_no": out["fileinfo"]["file_qury_no"], "filename": out["fileinfo"]["filename"]}})
    result = fmt.read_result(base64.b64decode(got["file_data"]))
    by = [(r["setl_id"], r["stmt_rslt"], r["memo"].split(" ")[0]) for r in result]
    assert by[:4] == [(a["setl_id"], "0", "一致"), (b["setl_id"], "1", "金额或就诊信息不符"), ("S-NOT-OURS", "1", "医保无此结算（医院单边账）"),
                      (a["setl_id"], "1", "医院重复上传")]
    assert sorted(by[4:]) == sorted([(c["setl_id"], "1", "医院未上传此结算（医保单边账）"), (resident["setl_id"], "1", "医院未上传此结算（医保单边账）")])
    assert result[1]["memo"].endswith(": medfee_sumamt") and result[0]["msgid"] and result[2]["msgid"] is None
    missing_c = next(r for r in result[4:] if r["setl_id"] == c["setl_id"])
    assert missing_c["medfee_sumamt"] == format_yuan(row(c).medfee) and missing_c["refd_setl_flag"] == "0"

    # Another hospital sees none of these settlements: its day balances at zero, and at zero only.
    fsi.issue(db, keyring, world.other_hospital.id, token="other-fsi-token-0123456")
    other = fsi.his(client, world.other_hospital, clock, token="other-fsi-token-0123456")
    other.sign_in()
    assert other.ok("3201", totals_payload([], DAY1, DAY2))["stmtinfo"]["stmt_rslt"] == "0"
    assert other.ok("3201", totals_payload(day1, DAY1, DAY2))["stmtinfo"]["stmt_rslt"] == "1"
    # Nor can it read this hospital's result file.
    other.refused("9102", {"fsDownloadIn": {"file_qury_no": out["fileinfo"]["file_qury_no"]}}, "不存在")


def test_totals_and_detail_over_rest(client, hospital, world):
    a, _ = settle(hospital, world.employee)
    b, _ = settle(hospital, world.employee, fsi.FEEDETAIL[:1])
    auth = bearer(world.hospital_credential)
    t = fmt.Totals.of([row(a), row(b)])
    body = {"insutype": "310", "setl_optins": "440300", "stmt_begndate": DAY1, "stmt_enddate": DAY1, "medfee_sumamt": format_yuan(t.medfee),
            "fund_pay_sumamt": format_yuan(t.fund), "acct_pay": format_yuan(t.acct), "fixmedins_setl_cnt": 2}
    r = client.post("/api/v1/his/statements/totals", json=body, headers=auth)
    assert r.status_code == 200 and r.json()["stmt_rslt"] == "0" and r.json()["differences"] == [], r.text
    r = client.post("/api/v1/his/statements/totals", json={**body, "acct_pay": "1.00"}, headers=auth).json()
    assert r["stmt_rslt"] == "1" and r["differences"] == [{"field": "acct_pay", "hospital": 100, "platform": t.acct}]
    # Bad input names the field and the rule.
    for bad, field in (({"stmt_enddate": "2026-11-21"}, "body.stmt_enddate"), ({"medfee_sumamt": "1.234"}, "body.medfee_sumamt"),
                       ({"setl_optins": "44030X"}, "body.setl_optins"), ({"stmt_enddate": "2027-11-22"}, "body.stmt_enddate")):
        r = client.post("/api/v1/his/statements/totals", json={**body, **bad}, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (bad, r.text)

    rows = [{"setl_id": a["setl_id"], "mdtrt_id": a["mdtrt_id"], "psn_no": a["psn_no"], "medfee_sumamt": format_yuan(row(a).medfee),
             "fund_pay_sumamt": format_yuan(row(a).fund), "acct_pay": format_yuan(row(a).acct)}]
    r = client.post("/api/v1/his/statements/detail", json={"setl_optins": "440300", "stmt_begndate": DAY1, "stmt_enddate": DAY1, "rows": rows},
                    headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["stmt_rslt"], out["balanced_cnt"], out["unbalanced_cnt"]) == ("1", 1, 1)
    assert [(x["setl_id"], x["reason"]) for x in out["rows"]] == [(a["setl_id"], "balanced"), (b["setl_id"], "missing_at_hospital")]
    assert out["file_qury_no"]


def test_a_reversal_on_a_later_day_is_a_reverse_row_there_and_the_first_day_stays(client, hospital, world, clock):
    """冲正 the same day never happened; a 冲正 on a later day leaves the day already reconciled as it was and counts as
    a reverse row on its own day, like a cancellation."""
    kept, _ = settle(hospital, world.employee)
    late, late_msgid = settle(hospital, world.employee, fsi.FEEDETAIL[:1])
    clock.advance(hours=8)  # the next Beijing day
    hospital.ok("2601", {"data": {"omsgid": late_msgid, "oinfno": "2207"}})
    assert hospital.ok("3201", totals_payload([row(kept), row(late)], DAY1, DAY1))["stmtinfo"]["stmt_rslt"] == "0"
    assert hospital.ok("3201", totals_payload([row(late, REVERSE)], DAY2, DAY2))["stmtinfo"]["stmt_rslt"] == "0"
