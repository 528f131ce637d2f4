"""The DEMO catalogue: the files are exactly what the generator writes (deterministic), valid, marked DEMO, a few hundred
entries with every class, caps, own ratios and limited-use rules; the example bills (examples/, yibao quote) state for
each catalogue code the class, cap, ratio and item categories the treatment region's demo catalogue has."""

from __future__ import annotations

import json
from pathlib import Path

from yibao.domain.catalogue import CHRGITM_LV
from yibao.domain.money import parse_ratio, parse_yuan
from yibao.formats import catalogue_csv
from yibao.sandbox import catalogue as demo_catalogue
from yibao.sandbox.catalogue import generate

ROOT = Path(__file__).resolve().parents[2]


def test_the_files_are_what_the_generator_writes_and_are_valid():
    total = 0
    for region, path in zip(demo_catalogue.REGIONS, demo_catalogue.files(), strict=True):
        text = path.read_text(encoding="utf-8")
        assert text == generate.text(region), f"{path.name}: regenerate with python -m yibao.sandbox.catalogue.generate"
        f = catalogue_csv.parse(path.name, text)
        assert f.region == region and "DEMO" in (f.note or "")
        levels = {e.chrgitm_lv for e in f.entries}
        assert levels == {"01", "02", "03"}
        assert any(e.pric_uplmt_amt for e in f.entries) and any(e.selfpay_prop for e in f.entries)
        assert any(e.lmt_medins_lv for e in f.entries) and any(e.lmt_cnt for e in f.entries) and any(e.lmt_cnt_day for e in f.entries) and any(e.lmt_med_type for e in f.entries)
        assert {e.list_type for e in f.entries} == {"101", "102", "103", "201", "301"}
        total += len(f.entries)
    assert total >= 300


def test_the_example_bills_agree_with_the_demo_catalogue():
    checked = 0
    for path in sorted((ROOT / "examples").glob("*.json")):
        bill = json.loads(path.read_text(encoding="utf-8"))
        region = bill["treatment_region"]
        entries = {e.hilist_code: e for e in catalogue_csv.parse("x", (demo_catalogue.HERE / f"catalogue-{region}.csv").read_text("utf-8")).entries}
        for line in bill["lines"]:
            e = entries.get(line["code"])
            if line["class"] == "unlisted":
                assert e is None, (path.name, line["code"])
                continue
            assert e is not None, (path.name, line["code"])
            assert CHRGITM_LV[e.chrgitm_lv] == line["class"], (path.name, line["code"])
            assert e.pric_uplmt_amt == (parse_yuan(line["price_cap"]) if "price_cap" in line else None), (path.name, line["code"])
            if "self_pay_ratio" in line and e.selfpay_prop is not None:
                assert e.selfpay_prop == parse_ratio(line["self_pay_ratio"]), (path.name, line["code"])
            # a bill's categories are what the platform would take from the catalogue's item_category
            assert line.get("categories", []) == list(e.item_category), (path.name, line["code"])
            checked += 1
    assert checked >= 10
