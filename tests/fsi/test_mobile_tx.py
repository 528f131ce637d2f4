"""Mobile payment over the national interface (6201 / 6202 / 6301 / 6203 / 6401), SQLite and PostgreSQL: the HIS
publishes a bill through the gateway, the holder pays it in the app (the patient API, PIN), the HIS reads the order
with its payToken, refunds exactly its parts (a SANDBOX institution gives the cash back) or revokes it unpaid."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import fsi
from tests.support.api import his, key, login
from tests.support.payments import payment_world
from yibao.app import create_app
from yibao.store.tables import bill_tokens, idempotency_records

PIN = "246810"
# tests.support.payments.LINES, as the national mobile interface spells fee lines (camelCase): 375.00 in all
FEEDETAIL_LIST = [
    {"feedetlSn": "1", "medinsListCodg": "A001", "medinsListName": "诊查费", "pric": Decimal("300.00"), "cnt": 1,
     "detItemFeeSumamt": Decimal("300.00")},
    {"feedetlSn": "2", "medinsListCodg": "XB01", "medinsListName": "头孢克肟胶囊", "pric": Decimal("12.50"), "cnt": 2, "rxno": "RX1",
     "bilgDrCodg": "D0042"},
    {"feedetlSn": "3", "medinsListCodg": "C900", "medinsListName": "保健品", "pric": Decimal("50.00"), "cnt": 1},
]


@pytest.fixture
def pw(db, keyring, wxpay):
    # limit 0: every cash share needs the holder's PIN in the app
    return payment_world(db, keyring, wxpay, limit=0, balance=20000)


@pytest.fixture
def client(db, keyring, sms_gateway, pw):
    fsi.issue(db, keyring, pw.w.hospital.id)
    with TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway, demo=True), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def hospital(client, pw, clock):
    h = fsi.his(client, pw.w.hospital, clock)
    h.sign_in()
    return h


def _publish(hospital, pw, **data) -> tuple[dict, str]:  # noqa: ANN001
    msgid = hospital.msgid()
    payload = {"data": {"orgCodg": pw.w.hospital.id, "psnNo": pw.w.employee.id, "insutype": "310", "medType": "11", "medOrgOrd": "HIS-0001",
                        "medfeeSumamt": Decimal("375.00"), "acctUsedFlag": "1", "feedetailList": FEEDETAIL_LIST, **data}}
    out = hospital.ok("6201", payload, msgid=msgid)
    assert out["ordStas"] == "1" and len(out["payToken"]) == 64, out
    return out, msgid


def _pay_in_app(client, pw, pay_ord_id: str, *, use_account: bool = True):  # noqa: ANN001, ANN202
    me = login(client, pw.w.phones["employee"])
    assert client.post("/api/v1/patient/payment-pin", json={"pin": PIN}, headers={**me, **key()}).status_code == 200
    return client.post(f"/api/v1/patient/bills/{pay_ord_id}/pay", json={"use_account": use_account, "pin": PIN}, headers={**me, **key()})


def _order(pay_ord_id: str, token: str) -> dict:
    return {"data": {"payOrdId": pay_ord_id, "payToken": token}}


def test_a_published_order_is_paid_by_the_holder_in_the_app_and_6301_shows_the_rest_bills_amounts(client, pw, hospital, db):
    out, msgid = _publish(hospital, pw)
    pay_ord_id, token = out["payOrdId"], out["payToken"]
    # priced as the platform prices the visit, without the account (the holder chooses it in the app)
    assert (out["feeSumamt"], out["psnAcctPay"], out["ownPayAmt"], out["medOrgOrd"]) == (Decimal("375.00"), Decimal("0.00"),
                                                                                         Decimal("366.00"), "HIS-0001")
    assert out["feeSumamt"] == out["ownPayAmt"] + out["psnAcctPay"] + out["fundPay"]
    rest = client.get(f"/api/v1/his/payments/{pay_ord_id}", headers=his(pw)).json()
    assert (rest["status"], rest["method"], rest["mdtrt_id"]) == ("billed", "mobile", out["mdtrtId"])
    # The token is answered once: only its hash is kept, and a replay of the msgid answers the order without it.
    again = hospital.ok("6201", {"data": {"orgCodg": pw.w.hospital.id, "psnNo": pw.w.employee.id, "insutype": "310", "medType": "11",
                                          "medOrgOrd": "HIS-0001", "medfeeSumamt": Decimal("375.00"), "acctUsedFlag": "1",
                                          "feedetailList": FEEDETAIL_LIST}}, msgid=msgid)
    assert (again["payOrdId"], again["payToken"]) == (pay_ord_id, None)
    stored = db.run(lambda c: [r.body for r in c.execute(select(idempotency_records.c.body))] +
                    [r.token_hash for r in c.execute(select(bill_tokens.c.token_hash))], write=False)
    assert stored and not any(token in text for text in stored)

    # 6202 authorises nothing: a payAuthNo is refused by name, and the order waits for the holder with its account untouched
    before = pw.balances()
    hospital.refused("6202", {"data": {**_order(pay_ord_id, token)["data"], "payAuthNo": "AUTH123"}}, "input.data.payAuthNo",
                     "pay_auth_not_used")
    waiting = hospital.ok("6202", _order(pay_ord_id, token))
    assert (waiting["ordStas"], waiting["setlId"], waiting["ownPayAmt"]) == ("1", None, Decimal("366.00")) and pw.balances() == before

    paid = _pay_in_app(client, pw, pay_ord_id)
    assert paid.status_code == 200 and paid.json()["status"] == "completed", paid.text
    rest = client.get(f"/api/v1/his/payments/{pay_ord_id}", headers=his(pw)).json()
    q = hospital.ok("6301", {"data": {**_order(pay_ord_id, token)["data"], "orgCodg": pw.w.hospital.id}})
    assert (q["ordStas"], q["setlType"], q["setlId"], q["medOrgOrd"], q["payOrdId"]) == ("6", "ALL", rest["setl_id"], "HIS-0001", pay_ord_id)
    assert (q["feeSumamt"], q["fundPay"], q["psnAcctPay"], q["ownPayAmt"]) == (
        Decimal(rest["total"]), Decimal(rest["fund"]["total"]), Decimal(rest["account"]["amount"]), Decimal(rest["cash"]["amount"]))
    assert (q["psnAcctPay"], q["ownPayAmt"]) == (Decimal("200.00"), Decimal("166.00"))
    assert q["feeSumamt"] == q["ownPayAmt"] + q["psnAcctPay"] + q["fundPay"] and q["traceTime"]
    assert before["holder"] - pw.balances()["holder"] == 200_00


def test_a_wrong_pay_token_or_another_institutions_order_is_refused(client, pw, hospital, clock, db, keyring):
    out, _ = _publish(hospital, pw)
    pay_ord_id, token = out["payOrdId"], out["payToken"]
    for infno in ("6202", "6301", "6401"):
        hospital.refused(infno, _order(pay_ord_id, "0" * 64), "input.data.payToken", "pay_token_mismatch")
    hospital.refused("6301", {"data": {"payOrdId": pay_ord_id}}, "input.data.payToken", "required")
    unsigned = fsi.his(client, pw.w.hospital, clock)  # the same HIS without a sign-in (9001): neither kind of transaction runs
    unsigned.seq = 1000  # its own message ids
    unsigned.refused("6301", _order(pay_ord_id, token), "sign_no", "not_signed_in")
    unsigned.refused("6203", {"data": {**_order(pay_ord_id, token)["data"], "appRefdSn": "R0", "refdType": "HI", "totlRefdAmt": 0,
                                       "psnAcctRefdAmt": 0, "fundRefdAmt": 0, "cashRefdAmt": 0}}, "sign_no", "not_signed_in")
    hospital.refused("6301", {"data": {**_order(pay_ord_id, token)["data"], "orgCodg": pw.w.other_hospital.id}}, "input.data.orgCodg")
    # another hospital, signed in to the gateway itself, holding the very token: "not found", as any order not its own
    fsi.issue(db, keyring, pw.w.other_hospital.id)
    other = fsi.his(client, pw.w.other_hospital, clock)
    other.sign_in()
    for infno in ("6202", "6301", "6401"):
        other.refused(infno, _order(pay_ord_id, token), "input.data.payOrdId", "not_found")
    other.refused("6203", {"data": {**_order(pay_ord_id, token)["data"], "appRefdSn": "R1", "refdType": "HI", "totlRefdAmt": 0,
                                    "psnAcctRefdAmt": 0, "fundRefdAmt": 0, "cashRefdAmt": 0}}, "input.data.payOrdId", "not_found")
    assert hospital.ok("6301", _order(pay_ord_id, token))["ordStas"] == "1"  # nothing of that touched the order
    # An order published over REST has no payToken: the national calls cannot reach it with any.
    visit = hospital.ok("2201", {"data": {"psn_no": pw.w.employee.id, "insutype": "310", "med_type": "11"}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**line, "mdtrt_id": visit} for line in fsi.FEEDETAIL]})
    bill = client.post(f"/api/v1/his/visits/{visit}/bill", headers={**his(pw), **key()}).json()["payment_id"]
    hospital.refused("6301", _order(bill, token), "input.data.payToken", "pay_token_mismatch")


def test_an_order_revoked_unpaid_cannot_be_paid_by_the_holder(client, pw, hospital):
    # 6201 naming a visit whose fees 2204 uploaded
    visit = hospital.ok("2201", {"data": {"psn_no": pw.w.employee.id, "insutype": "310", "med_type": "11"}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**line, "mdtrt_id": visit} for line in fsi.FEEDETAIL]})
    hospital.refused("6201", {"data": {"mdtrtId": visit, "medOrgOrd": "HIS-0002", "medfeeSumamt": Decimal("1.00")}},
                     "input.data.medfeeSumamt", "medfee_sumamt_mismatch")
    out = hospital.ok("6201", {"data": {"mdtrtId": visit, "medOrgOrd": "HIS-0002", "medfeeSumamt": Decimal("325.00")}})
    assert (out["mdtrtId"], out["feeSumamt"]) == (visit, Decimal("325.00"))
    before = pw.balances()
    revoked = hospital.ok("6401", _order(out["payOrdId"], out["payToken"]))
    assert revoked["ordStas"] == "12"
    late = _pay_in_app(client, pw, out["payOrdId"])
    assert late.json()["status"] == "voided" and pw.balances() == before, late.text  # a revoked bill pays nothing
    assert hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))["ordStas"] == "12"
    # revoked, the visit is the hospital's again: published anew, a new order and token
    again = hospital.ok("6201", {"data": {"mdtrtId": visit, "medOrgOrd": "HIS-0003"}})
    assert again["payOrdId"] != out["payOrdId"] and again["payToken"] != out["payToken"]


def test_a_paid_order_cannot_be_revoked_and_a_field_is_named_the_national_way(client, pw, hospital):
    out, _ = _publish(hospital, pw)
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    hospital.refused("6401", _order(out["payOrdId"], out["payToken"]), "input.data.payOrdId", "bill_not_waiting")
    bad = [{**FEEDETAIL_LIST[0], "detItemFeeSumamt": Decimal("1.00")}]
    hospital.refused("6201", {"data": {"psnNo": pw.w.employee.id, "medOrgOrd": "X", "feedetailList": bad}},
                     "input.data.feedetailList[0].detItemFeeSumamt", "total_mismatch")
    hospital.refused("6201", {"data": {"psnNo": pw.w.employee.id, "medOrgOrd": "X", "feedetailList": [{**FEEDETAIL_LIST[0], "pric": "abc"}]}},
                     "input.data.feedetailList[0].pric")
    hospital.refused("6201", {"data": {"psnNo": pw.w.employee.id, "feedetailList": FEEDETAIL_LIST}}, "input.data.medOrgOrd", "required")


def _refund(hospital, order: dict, sn: str, refd_type: str, *, fund: str, account: str, cash: str, **kw) -> dict:  # noqa: ANN001
    total = Decimal(fund) + Decimal(account) + Decimal(cash)
    return {"data": {**_order(order["payOrdId"], order["payToken"])["data"], "appRefdSn": sn, "appRefdTime": "20261206120000",
                     "refdType": refd_type, "totlRefdAmt": total, "fundRefdAmt": Decimal(fund), "psnAcctRefdAmt": Decimal(account),
                     "cashRefdAmt": Decimal(cash), **kw}}


def test_6203_refunds_exactly_its_parts(client, pw, hospital, wxpay):
    out, _ = _publish(hospital, pw)
    before = pw.balances()
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    paid = hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))
    fund, account, cash = str(paid["fundPay"]), str(paid["psnAcctPay"]), str(paid["ownPayAmt"])
    assert (account, cash) == ("200.00", "166.00")

    def refunded() -> int:  # what the SANDBOX institution gave back
        return wxpay.runtime.books.trades[out["payOrdId"]].refunded_fen

    # amounts that are not exactly the part: refused by field, nothing recorded
    hospital.refused("6203", _refund(hospital, out, "R1", "HI", fund=fund, account="100.00", cash="0"), "input.data.psnAcctRefdAmt",
                     "refund_amount_mismatch")
    hospital.refused("6203", _refund(hospital, out, "R1", "HI", fund=fund, account=account, cash="0", totlRefdAmt=Decimal("1.00")),
                     "input.data.totlRefdAmt", "total_mismatch")
    hospital.refused("6203", _refund(hospital, out, "R1", "ALL", fund=fund, account=account, cash="0"), "input.data.cashRefdAmt")
    hospital.refused("6203", _refund(hospital, out, "R1", "PART", fund=fund, account=account, cash="0"), "input.data.refdType")
    assert hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))["refdList"] == []

    # HI: the fund and the account back, the cash kept
    hi = hospital.ok("6203", _refund(hospital, out, "R1", "HI", fund=fund, account=account, cash="0"))
    assert (hi["refStatus"], hi["ordStas"], hi["psnAcctRefdAmt"], hi["cashRefdAmt"]) == ("SUCC", "8", Decimal(account), Decimal("0.00"))
    assert pw.balances()["holder"] == before["holder"] and refunded() == 0
    hospital.refused("6203", _refund(hospital, out, "R2", "HI", fund=fund, account=account, cash="0"), "input.data.refdType", "already_refunded")
    # The same appRefdSn under a new msgid is the same refund, answered as it stands
    assert hospital.ok("6203", _refund(hospital, out, "R1", "HI", fund=fund, account=account, cash="0"))["refdSn"] == hi["refdSn"]

    # CASH: the institution gives the cash back, exactly
    got = hospital.ok("6203", _refund(hospital, out, "R3", "CASH", fund="0", account="0", cash=cash))
    assert (got["refStatus"], got["ordStas"], got["cashRefdAmt"], got["totlRefdAmt"]) == ("SUCC", "7", Decimal(cash), Decimal(cash))
    assert refunded() == 166_00
    q = hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))
    assert q["ordStas"] == "7" and sorted((r["appRefdSn"], r["refStatus"]) for r in q["refdList"]) == [("R1", "SUCC"), ("R3", "SUCC")]
    after = pw.balances()
    assert after["holder"] == before["holder"] and after["pending"] == 0


def test_6203_all_gives_every_part_back_in_one_and_a_retry_does_not_refund_twice(client, pw, hospital, wxpay):
    out, _ = _publish(hospital, pw)
    before = pw.balances()
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    paid = hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))
    body = _refund(hospital, out, uuid.uuid4().hex, "ALL", fund=str(paid["fundPay"]), account=str(paid["psnAcctPay"]),
                   cash=str(paid["ownPayAmt"]))
    msgid = hospital.msgid()
    done = hospital.ok("6203", body, msgid=msgid)
    assert (done["refStatus"], done["ordStas"], done["totlRefdAmt"]) == ("SUCC", "7", paid["feeSumamt"])
    assert hospital.ok("6203", body, msgid=msgid) == done  # the msgid's answer, replayed
    assert wxpay.runtime.books.trades[out["payOrdId"]].refunded_fen == 166_00
    assert pw.balances()["holder"] == before["holder"]


def test_6203_answers_exp_while_the_cash_answer_is_unknown_and_a_retry_of_the_msgid_finishes_it(client, pw, hospital, wxpay):
    out, _ = _publish(hospital, pw)
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    paid_books = pw.balances()
    paid = hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))
    body = _refund(hospital, out, "R-EXP", "ALL", fund=str(paid["fundPay"]), account=str(paid["psnAcctPay"]), cash=str(paid["ownPayAmt"]))
    msgid = hospital.msgid()
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    pending = hospital.ok("6203", body, msgid=msgid)
    assert (pending["refStatus"], pending["ordStas"]) == ("EXP", "17")
    assert pw.balances() == paid_books  # nothing given back on our books while the cash answer is unknown
    wxpay.runtime.set_knobs(server_error_rate=0.0)
    done = hospital.ok("6203", body, msgid=msgid)  # not stored while in progress: the retry asks the institution again
    assert (done["refStatus"], done["ordStas"], done["refdSn"]) == ("SUCC", "7", pending["refdSn"])
    assert wxpay.runtime.books.trades[out["payOrdId"]].refunded_fen == 166_00
    assert hospital.ok("6203", body, msgid=msgid) == done  # final: now the msgid's stored answer


def test_6203_answers_fail_when_the_institution_declines_and_nothing_is_given_back(client, pw, hospital, wxpay):
    out, _ = _publish(hospital, pw)
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    paid_books = pw.balances()
    wxpay.runtime.set_knobs(error_rate=1.0)
    failed = hospital.ok("6203", _refund(hospital, out, "R-FAIL", "CASH", fund="0", account="0", cash="166.00"))
    assert (failed["refStatus"], failed["ordStas"]) == ("FAIL", "6") and "nothing was given back" in failed["errMsg"]
    assert pw.balances() == paid_books
    wxpay.runtime.set_knobs(error_rate=0.0)
    assert hospital.ok("6203", _refund(hospital, out, "R-FAIL-2", "CASH", fund="0", account="0", cash="166.00"))["refStatus"] == "SUCC"


def test_in_the_encrypted_mode_the_token_is_answered_sealed_and_works(client, pw, db, keyring, clock):
    from yibao.crypto import gm

    sm4_key, private = bytes.fromhex("0123456789abcdeffedcba9876543210"), gm.Sm2PrivateKey.generate()
    fsi.issue(db, keyring, pw.w.other_hospital.id, token="other-fsi-token-0123456", sm4_key=sm4_key, sm2_public=private.public_key().to_hex())
    sealed = fsi.his(client, pw.w.other_hospital, clock, token="other-fsi-token-0123456", sm4_key=sm4_key, sm2_private=private)
    sealed.sign_in()
    out = sealed.ok("6201", {"data": {"psnNo": pw.w.employee.id, "medOrgOrd": "ENC-1", "feedetailList": FEEDETAIL_LIST[:1]}})
    assert len(out["payToken"]) == 64 and out["feeSumamt"] == Decimal("300.00")
    assert sealed.ok("6301", _order(out["payOrdId"], out["payToken"]))["ordStas"] == "1"
    assert sealed.ok("6401", _order(out["payOrdId"], out["payToken"]))["ordStas"] == "12"


def test_one_msgid_carries_one_body_even_while_its_refund_is_unknown(client, pw, hospital, wxpay):
    """A review finding: 6203 under msgid M answered EXP kept nothing for M, so M with ANOTHER body (another refund) was
    run and moved money. M is now claimed for its body before anything runs: another body under M is refused, M with
    its own body resumes and ends with the institution's answer."""
    out, _ = _publish(hospital, pw)
    assert _pay_in_app(client, pw, out["payOrdId"]).json()["status"] == "completed"
    paid = hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))
    cash_body = _refund(hospital, out, "R-A", "CASH", fund="0", account="0", cash=str(paid["ownPayAmt"]))
    hi_body = _refund(hospital, out, "R-B", "HI", fund=str(paid["fundPay"]), account=str(paid["psnAcctPay"]), cash="0")
    m = hospital.msgid()
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    assert hospital.ok("6203", cash_body, msgid=m)["refStatus"] == "EXP"
    hospital.refused("6203", hi_body, "msgid_reused", msgid=m)  # another body under M: refused, nothing run
    wxpay.runtime.set_knobs(server_error_rate=0.0)
    assert hospital.ok("6203", cash_body, msgid=m)["refStatus"] == "SUCC"  # M with its body resumes
    assert hospital.ok("6203", cash_body, msgid=m)["refStatus"] == "SUCC"  # and now replays
    hospital.refused("6203", hi_body, "msgid_reused", msgid=m)
    assert hospital.ok("6301", _order(out["payOrdId"], out["payToken"]))["ordStas"] in ("8", "9")  # one part back: the HI refund never ran
