"""Cross-region clearing over the operator's REST API, on SQLite and PostgreSQL: a month of Ningbo's insured treated in
Shenzhen and Shenzhen's in Ningbo is listed (3260 shape), netted between the two regions (3261) — each region's books
summing to zero, the clearing accounts emptied — confirmed again changing nothing, rolled back (3262) and confirmed
again."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.api import OPERATOR
from tests.support.settlement import open_with_lines, settle
from tests.support.world import seed
from yibao.app import create_app
from yibao.domain.ledger import clearing_account
from yibao.domain.money import format_yuan
from yibao.services.books import ledger
from yibao.services.care import settlement
from yibao.services.clearing import interregion
from yibao.services.clearing.interregion import outside
from yibao.services.people import filings
from yibao.store.tables import settlements as S

SZ, NB = "440300", "330200"


def _books(db) -> dict[str, int]:  # noqa: ANN001
    def read(c):  # noqa: ANN001, ANN202
        for region in (SZ, NB):
            assert ledger.totals(c, region).balanced, region  # each region's books sum to zero on their own
        return {"nb_sz": ledger.balance(c, clearing_account(NB, SZ)), "sz_nb": ledger.balance(c, clearing_account(SZ, NB)),
                "nb_out": ledger.balance(c, outside(NB)),
                "sz_out": ledger.balance(c, outside(SZ))}
    return db.run(read, write=False)


def test_a_month_is_netted_between_two_regions_each_regions_books_summing_to_zero(db, keyring, clock):
    sz, nb = seed(db, keyring), seed(db, keyring, region=NB)
    now = db.clock()
    for person, where in ((nb.employee.id, SZ), (nb.retiree.id, SZ), (sz.retiree.id, NB)):
        db.run(lambda c, p=person, r=where: filings.file(c, now, person_id=p, treatment_region=r, filing_type="long_term",
                                                         valid_from=date(2026, 1, 1), valid_to=None, actor="test"))
    settle(db, sz.hospital, open_with_lines(db, sz.hospital, nb.employee.id).id, "MSG-X1")  # Ningbo's insured in Shenzhen, with the account
    gone = settle(db, sz.hospital, open_with_lines(db, sz.hospital, nb.retiree.id).id, "MSG-X2", use=False)
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=sz.hospital, setl_id=gone["setl_id"], actor="test"))
    settle(db, nb.hospital, open_with_lines(db, nb.hospital, sz.retiree.id).id, "MSG-X3", use=False)  # Shenzhen's insured in Ningbo
    rows = {r.msgid: r for r in db.run(lambda c: c.execute(select(S)).all(), write=False)}
    nb_owes = int(rows["MSG-X1"].fund_total) + int(rows["MSG-X1"].account_pay)
    sz_owes = int(rows["MSG-X3"].fund_total)
    assert int(rows["MSG-X1"].account_pay) > 0 and nb_owes != sz_owes
    net = nb_owes - sz_owes  # 330200 sorts first: region_a
    before = _books(db)
    assert before["nb_sz"] == -before["sz_nb"] == net  # Ningbo's account: what it owes Shenzhen, less what Shenzhen owes it

    with TestClient(create_app(db, keyring=keyring, demo=True), raise_server_exceptions=False) as client:
        def post(path: str, body: dict | None = None):  # noqa: ANN202
            return client.post(path, json=body, headers={**OPERATOR, "Idempotency-Key": uuid.uuid4().hex})

        early = post("/api/v1/admin/interregion-clearing", {"region_a": SZ, "region_b": NB, "setlym": "202611"})
        assert early.status_code == 409 and early.json()["error"]["code"] == "month_not_ended"
        # A region no policy configures is refused, naming the field (it had opened books for 999999).
        unknown = post("/api/v1/admin/interregion-clearing", {"region_a": "999999", "region_b": NB, "setlym": "202611"})
        assert unknown.status_code == 422 and (unknown.json()["error"]["field"], unknown.json()["error"]["code"]) == ("region_a", "unknown_region")
        clock.now = clock.now.replace(month=12, day=2)
        listed = client.get(f"/api/v1/admin/interregion-clearing?region_a={SZ}&region_b={NB}&setlym=202611", headers=OPERATOR).json()
        assert (listed["region_a"], listed["a_owes_b"], listed["b_owes_a"], listed["net"], listed["totalrow"]) == (
            NB, format_yuan(nb_owes), format_yuan(sz_owes), format_yuan(net), 3)
        by_setl = {r["setl_sn"]: r for r in listed["data"]}
        assert by_setl[rows["MSG-X2"].id]["optins_pay_sumamt"] == "0.00"  # settled and cancelled within the month
        assert (by_setl[rows["MSG-X3"].id]["insuplc_admdvs"], by_setl[rows["MSG-X3"].id]["mdtrtarea"]) == (SZ, NB)
        assert by_setl[rows["MSG-X1"].id]["optins_pay_sumamt"] == format_yuan(nb_owes) and by_setl[rows["MSG-X1"].id]["certno"] is None

        confirmed = post("/api/v1/admin/interregion-clearing", {"region_a": SZ, "region_b": NB, "setlym": "202611"})
        assert confirmed.status_code == 201, confirmed.text
        c1 = confirmed.json()
        assert (c1["status"], c1["net"], c1["debtor"]) == ("confirmed", format_yuan(abs(net)), NB if net > 0 else SZ)
        netted = _books(db)
        assert (netted["nb_sz"], netted["sz_nb"]) == (0, 0)  # both clearing accounts emptied
        # the money left the debtor's books (its outside account credited) and entered the creditor's
        assert netted["nb_out"] == -netted["sz_out"] == net
        again = post("/api/v1/admin/interregion-clearing", {"region_a": NB, "region_b": SZ, "setlym": "202611"})
        assert again.json()["id"] == c1["id"] and _books(db) == netted  # a second confirmation changes nothing

        rolled = post(f"/api/v1/admin/interregion-clearing/{c1['id']}/rollback")
        assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
        assert {k: v for k, v in _books(db).items() if k in ("nb_sz", "sz_nb")} == {"nb_sz": net, "sz_nb": -net}
        assert post(f"/api/v1/admin/interregion-clearing/{c1['id']}/rollback").json()["status"] == "rolled_back"  # again: nothing more
        c2 = post("/api/v1/admin/interregion-clearing", {"region_a": SZ, "region_b": NB, "setlym": "202611"}).json()
        assert c2["id"] != c1["id"] and c2["status"] == "confirmed"
        # The pair's confirmations of the month, the rolled-back one too (the /admin/clearing page's list), either order of the pair.
        listed_c = db.run(lambda c: interregion.listing(c, region_a=SZ, region_b=NB, setlym="202611"), write=False)
        assert sorted((x["id"], x["status"]) for x in listed_c) == sorted([(c1["id"], "rolled_back"), (c2["id"], "confirmed")])
        final = _books(db)
        assert (final["nb_sz"], final["sz_nb"]) == (0, 0)
