"""Monthly clearing over the national envelope (3203 / 3204 / 3205A) and the REST API (the hospital's application, the
operator's review, approval and payment through the SANDBOX bank), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.api import OPERATOR, his, key
from tests.support.credit import connect
from tests.support.identity import admit
from tests.support.settlement import open_with_lines, settle
from yibao.domain.ledger import clearing_payout, institution_deposit
from yibao.domain.money import apply_ratio, format_yuan
from yibao.services.books import ledger
from yibao.store.tables import settlements as S

BANK = "bank-440300"


def _declared(fund: int, account: int, **over: object) -> dict:
    return {"data": {"clr_type": "11", "clr_way": "1", "setlym": "202611", "psntime": 2, "medfee_sumamt": "0.00", "med_sumfee": "0.00",
                     "fund_appy_sum": format_yuan(fund), "cash_payamt": "0.00", "acct_pay": format_yuan(account),
                     "begndate": "2026-11-01", "enddate": "2026-11-30", **over}}


def test_a_month_applied_withdrawn_and_cleared_over_the_envelope_and_rest(db, keyring, client, world, hospital, clock, bank):
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)
    settle(db, world.hospital, open_with_lines(db, world.hospital, world.employee.id).id, "MSG-C1")
    settle(db, world.hospital, open_with_lines(db, world.hospital, world.retiree.id).id, "MSG-C2", use=False)
    rows = db.run(lambda c: c.execute(select(S).where(S.c.institution_id == world.hospital.id)).all(), write=False)
    fund, account = sum(int(r.fund_total) for r in rows), sum(int(r.account_pay) for r in rows)

    msg = hospital.refused("3203", _declared(fund, account), "input.data.setlym", "尚未结束")  # November has not ended
    assert "has not ended" in msg
    clock.now = clock.now.replace(month=12, day=1, hour=20)
    hospital.sign_in()  # a new day's sign-in
    first = hospital.ok("3203", _declared(fund, account))["result"]["clr_appy_evt_id"]
    assert hospital.ok("3205A", {"data": {"clr_appy_evt_id": first}})["result"]["clr_stas"] == "10"
    hospital.refused("3203", _declared(fund, account), "input.data.setlym", "已有清算申请")
    withdrawn = hospital.ok("3204", {"data": {"clr_apply_evt_id": first}})["result"]  # Jilin's spelling is read too
    assert withdrawn == {"clr_appy_evt_id": first, "status": "withdrawn"}
    status = hospital.ok("3205A", {"data": {"clr_appy_evt_id": first}})["result"]
    assert (status["clr_stas"], status["status"]) == (None, "withdrawn")

    # Over REST: the hospital applies again, declaring 1.00 more fund than was paid.
    r = client.post("/api/v1/his/clearing-applications", headers={**his(world), **key()},
                    json={**_declared(fund + 100, account)["data"], "psntime": 2})
    assert r.status_code == 201, r.text
    app = r.json()["clr_appy_evt_id"]
    assert client.get(f"/api/v1/his/clearing-applications/{app}", headers=his(world)).json()["clr_stas"] == "10"
    assert client.get(f"/api/v1/his/clearing-applications/{app}", headers=his(world, other=True)).status_code == 404  # not theirs
    review = client.get(f"/api/v1/admin/clearing-applications/{app}/review", headers=OPERATOR).json()
    assert review["figures"]["fund_appy_sum"] == {"declared": format_yuan(fund + 100), "platform": format_yuan(fund), "difference": "1.00"}
    payee = client.put(f"/api/v1/admin/institutions/{world.hospital.id}/payee", headers={**OPERATOR, **key()},
                       json={"account_no": "6222020000123456782", "account_name": "人民医院"})
    assert payee.status_code == 200, payee.text
    approved = client.post(f"/api/v1/admin/clearing-applications/{app}/approve", headers={**OPERATOR, **key()})
    deposit = apply_ratio(fund, 50_000)
    assert approved.status_code == 200 and approved.json()["payable"] == format_yuan(fund + account - deposit)
    paid = client.post(f"/api/v1/admin/clearing-applications/{app}/pay", headers={**OPERATOR, **key()}, json={"bank": BANK})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["clr_stas"], paid.json()["outcome"]) == ("50", "cleared")
    withdraw = client.post(f"/api/v1/his/clearing-applications/{app}/withdraw", headers={**his(world), **key()})
    assert withdraw.status_code == 409 and withdraw.json()["error"]["code"] == "already_accepted"
    final = hospital.ok("3205A", {"data": {"clr_appy_evt_id": app}})["result"]
    assert (final["clr_stas"], str(final["payable"]), str(final["deposit"]), final["clr_ym"]) == (
        "50", format_yuan(fund + account - deposit), format_yuan(deposit), "202611")
    moved = db.run(lambda c: (ledger.balance(c, clearing_payout("440300")), ledger.balance(c, institution_deposit(world.hospital.id)),
                              ledger.totals(c).balanced), write=False)
    assert moved == (fund + account - deposit, deposit, True)
    listed = client.get("/api/v1/admin/clearing-applications?setlym=202611", headers=OPERATOR).json()["items"]
    assert {x["clr_appy_evt_id"]: x["status"] for x in listed} == {first: "withdrawn", app: "cleared"}
