"""A catalogue entry's item category reaches the engine on the platform's path (issue 16, item 3): the upload stores
what the catalogue decided (fee_lines.item_category), the settlement reads it back, and a policy's item_ratios pay the
line at its own ratio — by category, and by national code even when the hospital sent its own code."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.support import catalogue as tc
from tests.support.settlement import settle
from tests.support.world import seed
from yibao.domain.errors import InputError
from yibao.formats import catalogue_csv
from yibao.policies.loader import BUILTIN_DIR
from yibao.policies.schema import policy_from_mapping
from yibao.services.care import settlement as care_settlement
from yibao.services.care import visits
from yibao.services.catalogue import versions
from yibao.store.tables import fee_lines

# The test catalogue again from 2026-11-01 (in force on the tests' day, 2026-11-22), the lens 人工晶体 now an implant.
HEADER = tc.CSV.splitlines()[0]
BODY = tc.CSV.replace(HEADER, HEADER + ",item_category").replace(
    f"{tc.APPROVAL},人工晶体,301,02,800.00,,,,,,,,1,0,2026-01-01,", f"{tc.APPROVAL},人工晶体,301,02,800.00,,,,,,,,1,0,2026-01-01,,,implant")


def _sz_with(rules: list[dict]) -> object:
    """Shenzhen's policy with ``rules`` as the employee outpatient fallback rule's item_ratios."""
    text = (BUILTIN_DIR / "440300-2026.yaml").read_text(encoding="utf-8")
    data = copy.deepcopy(yaml.safe_load(text))
    data["schemes"]["employee"]["outpatient"][2]["item_ratios"] = rules
    return policy_from_mapping(data, "440300-items.yaml")


def _visit(db, keyring):
    w = seed(db, keyring)
    db.run(lambda c: versions.import_file(c, db.clock(), file=catalogue_csv.parse("t2.csv", tc.text("440300", ver="T2", begndate="2026-11-01", body=BODY)),
                                          actor="test"))
    v = db.run(lambda c: visits.open_visit(c, db.clock(), institution=w.hospital, person_id=w.employee.id, kind="outpatient"))
    db.run(lambda c: visits.upload_lines(c, db.clock(), institution=w.hospital, visit_id=v.id, items=[
        {"feedetl_sn": "1", "medins_list_codg": "A001", "unit_price": "300.00", "quantity": "1"},
        {"feedetl_sn": "2", "med_list_codg": tc.APPROVAL, "unit_price": "900.00", "quantity": "1", "hosp_appr_flag": True}]))
    return w, v


def test_the_upload_stores_the_entry_s_category(db, keyring):
    _, v = _visit(db, keyring)
    rows = db.run(lambda c: c.execute(fee_lines.select().where(fee_lines.c.visit_id == v.id).order_by(fee_lines.c.feedetl_sn)).all(), write=False)
    assert [(r.code, r.med_list_codg, r.item_category) for r in rows] == [("A001", tc.SERVICE, None), (tc.APPROVAL, tc.APPROVAL, "implant")]


@pytest.mark.parametrize(("rules", "hifp"), [
    # Shenzhen employee outpatient at a level-3 hospital: yearly deductible 300.00, ratio 0.50, cap 3000.00.
    # 诊查费 300.00 (A); 人工晶体 900.00 capped at 800.00 (100.00 over), 10% first (80.00), 720.00 in scope.
    # No rule: (1020.00 − 300.00) × 0.50 = 360.00
    pytest.param([], "360.00", id="no-rule"),
    # the implant at 0.90: the ordinary 300.00 meets the deductible; 720.00 × 0.90 = 648.00
    pytest.param([{"category": "implant", "ratio": "0.90"}], "648.00", id="by-category"),
    # and 诊查费 by national code at 100% (the hospital sent its own code A001): nothing ordinary is left, so the
    # deductible is met from the items in the rules' order: the implant's 720.00 − 300.00 = 420.00 × 0.90 = 378.00,
    # 诊查费 300.00 × 1 = 300.00; 678.00
    pytest.param([{"category": "implant", "ratio": "0.90"}, {"code": tc.SERVICE, "ratio": "1"}], "678.00", id="by-category-and-code"),
])
def test_the_settlement_pays_the_item_at_its_ratio(db, keyring, monkeypatch, rules, hifp):
    w, v = _visit(db, keyring)
    policy = _sz_with(rules)
    monkeypatch.setattr(care_settlement, "policies_for", lambda insured, treated, year: (policy, policy))
    doc = settle(db, w.hospital, v.id, "M1", use=False)
    assert (doc["medfee_sumamt"], doc["overlmt_selfpay"], doc["preselfpay_amt"], doc["inscp_scp_amt"], doc["act_pay_dedc"]) == (
        "1200.00", "100.00", "80.00", "1020.00", "300.00")
    assert doc["hifp_pay"] == hifp


def test_a_hospital_cannot_send_a_category(db, keyring):
    w = seed(db, keyring)
    v = db.run(lambda c: visits.open_visit(c, db.clock(), institution=w.hospital, person_id=w.employee.id, kind="outpatient"))
    for field in ("categories", "item_category"):
        with pytest.raises(InputError) as caught:
            db.run(lambda c, field=field: visits.upload_lines(c, db.clock(), institution=w.hospital, visit_id=v.id, items=[
                {"feedetl_sn": "1", "med_list_codg": tc.APPROVAL, "unit_price": "900.00", "quantity": "1", field: ["implant"]}]))
        assert (caught.value.field, caught.value.code) == (f"lines[0].{field}", "decided_by_platform")
