"""A cross-region settlement balances each region's books, and cancelling it undoes every leg in both
(SQLite and PostgreSQL). A finding of the platform-core review."""

from __future__ import annotations

from tests.support.api import OPERATOR, bearer, post, visit
from tests.support.presence import card_with_pin, present_card_over_http
from yibao.services.books import ledger


def test_cross_region_settlement_balances_each_regions_books(client, db, keyring, world):
    from tests.support.world import seed

    ningbo = seed(db, keyring, region="330200")
    r = post(client, f"/api/v1/admin/persons/{ningbo.employee.id}/filings",
             {"treatment_region": "440300", "filing_type": "long_term", "valid_from": "2026-01-01"}, OPERATOR)
    assert r.status_code == 201
    v = visit(client, world.hospital_credential, ningbo.employee.id)
    # Filed in Shenzhen: the Ningbo holder reads their card with its PIN there, for this visit.
    card_no = card_with_pin(db, keyring, ningbo.employee.id)
    assert present_card_over_http(client, bearer(world.hospital_credential), card_no, visit_id=v).status_code == 201
    doc = post(client, f"/api/v1/his/visits/{v}/settle", {"account": {"use": True}}, bearer(world.hospital_credential)).json()
    assert doc["insuplc_admdvs"] == "330200" and doc["mdtrtarea_admvs"] == "440300"
    for region in ("330200", "440300"):
        t = db.run(lambda c, r=region: ledger.totals(c, r), write=False)
        assert t.balanced, (region, t)
    # cancelling undoes every leg, in both regions
    assert post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, bearer(world.hospital_credential)).status_code == 200
    for region in ("330200", "440300"):
        assert db.run(lambda c, r=region: ledger.totals(c, r), write=False).balanced
    assert doc["acct_pay"] != "0.00"  # the account leg crossed regions too
