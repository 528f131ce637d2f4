"""The catalogue's pure rules: a file's rows validated (file, row, field), the decision a fee line gets, the per-line
split the upload answers with, and the differences between two versions."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.catalogue import CatalogueFileError, Entry, LineFacts, decide, diff, split_line
from yibao.formats import catalogue_csv

HEAD = "# ver: 440300-T\n# insu_admdvs: 440300\n# begndate: 2026-01-01\n"
COLS = "hilist_code,hilist_name,list_type,chrgitm_lv,pric_uplmt_amt,selfpay_prop,lmt_medins_lv,begndate,enddate\n"
DAY = date(2026, 11, 22)


def entry(**kw) -> Entry:
    base = dict(hilist_code="XJ01DDC078A001010100483", hilist_name="头孢克肟胶囊", list_type="101", chrgitm_lv="02", begndate=date(2026, 1, 1))
    return Entry(**{**base, **kw})


def facts(**kw) -> LineFacts:
    return LineFacts(**{**dict(day=DAY, visit_kind="outpatient", institution_level="level3", age=40, quantity=10_000), **kw})


def test_a_file_is_read_with_its_version_and_entries():
    f = catalogue_csv.parse("a.csv", HEAD + COLS + "XJ01DDC078A001010100483,头孢克肟胶囊,101,02,10.00,0.05,level2,2026-01-01,\n")
    assert (f.ver, f.region, f.begndate, len(f.entries)) == ("440300-T", "440300", date(2026, 1, 1), 1)
    e = f.entries[0]
    assert (e.pric_uplmt_amt, e.selfpay_prop, e.lmt_medins_lv, e.enddate) == (1000, 50_000, "level2", None)


def test_every_error_of_a_file_names_file_row_and_field_in_both_languages():
    text = HEAD + COLS + ("001102000010000,诊查费,201,04,,,,2026-01-01,\n"  # line 5: chrgitm_lv
                          "XJ01DDC078A001010100483,头孢,101,01,,0.10,,2026-01-01,\n"  # line 6: a ratio on a class-A entry
                          "001102000010000,诊查费,201,01,12.345,,,2026-01-01,\n"  # line 7: three decimals
                          "C0301010010010010001,晶体,301,02,,,level9,2026-13-01,\n")  # line 8: level (the first error of the row)
    with pytest.raises(CatalogueFileError) as caught:
        catalogue_csv.parse("bad.csv", text)
    got = [(e.file, e.row, e.field, e.code) for e in caught.value.errors]
    assert got == [("bad.csv", 5, "chrgitm_lv", "invalid_choice"), ("bad.csv", 6, "selfpay_prop", "selfpay_prop_not_b"),
                   ("bad.csv", 7, "pric_uplmt_amt", "too_many_decimals"), ("bad.csv", 8, "lmt_medins_lv", "invalid_choice")]
    first = caught.value.errors[0]
    assert "收费项目等级" in first.zh and "must be 01" in first.en
    assert first.describe().startswith("bad.csv:5: chrgitm_lv: ")


def test_a_missing_version_line_an_unknown_column_and_a_repeated_code_are_refused():
    with pytest.raises(CatalogueFileError) as caught:
        catalogue_csv.parse("x.csv", "# ver: T\n" + COLS.replace("enddate", "end_date") + "001102000010000,a,201,01,,,,2026-01-01,\n")
    assert {(e.row, e.field, e.code) for e in caught.value.errors} == {
        (1, "insu_admdvs", "missing_meta"), (1, "begndate", "missing_meta"), (2, "end_date", "unknown_column")}
    with pytest.raises(CatalogueFileError) as caught:
        catalogue_csv.parse("y.csv", HEAD + COLS + "001102000010000,a,201,01,,,,2026-01-01,\n001102000010000,b,201,01,,,,2026-01-01,\n")
    assert [(e.row, e.field, e.code) for e in caught.value.errors] == [(6, "hilist_code", "duplicate_code")]


def test_the_decision_takes_class_cap_and_ratio_from_the_entry():
    d = decide(entry(pric_uplmt_amt=1000), facts(), default_b_ratio=100_000)
    assert (d.line_class, d.chrgitm_lv, d.price_cap, d.self_pay_ratio, d.lmt_used_flag, d.code) == ("B", "02", 1000, 100_000, "0", "in_scope")
    own = decide(entry(selfpay_prop=50_000), facts(), default_b_ratio=100_000)
    assert own.self_pay_ratio == 50_000  # the entry's own ratio, not the region's default
    a = decide(entry(chrgitm_lv="01"), facts(), default_b_ratio=100_000)
    assert (a.line_class, a.self_pay_ratio) == ("A", None)
    c = decide(entry(chrgitm_lv="03"), facts(), default_b_ratio=100_000)
    assert (c.line_class, c.code) == ("C", "class_c")


@pytest.mark.parametrize(("kw", "line", "code", "words"), [
    (dict(lmt_medins_lv="level2"), dict(institution_level="community"), "lmt_medins_lv", "限二级及以上医疗机构使用"),
    (dict(lmt_medins_lv="level2"), dict(institution_level="pharmacy"), "lmt_medins_lv", "limited to level-2 institutions and above"),
    (dict(lmt_med_type=("inpatient",)), dict(visit_kind="outpatient"), "lmt_med_type", "限住院使用"),
    (dict(lmt_cnt=20_000), dict(quantity=10_000, quantity_before=20_000), "lmt_cnt", "每次就诊限2"),
    (dict(lmt_cnt_day=10_000), dict(quantity=10_000, quantity_before=10_000, quantity_before_day=10_000), "lmt_cnt_day", "每日限1"),
    (dict(lmt_cnt_day=10_000), dict(quantity=20_000), "lmt_cnt_day", "at most 1 per day"),
    (dict(lmt_age_max=14), dict(age=15), "lmt_age", "限14岁及以下使用"),
    (dict(lmt_age_min=60), dict(age=59), "lmt_age", "限60岁及以上使用"),
    (dict(hosp_appr_flag=True), dict(), "hosp_appr", "限医院审批后使用"),
    (dict(rx_flag=True), dict(prescription=False), "rx_required", "凭医师处方"),
    (dict(begndate=date(2026, 12, 1)), dict(), "not_yet_valid", "自 2026-12-01 起生效"),
    (dict(enddate=date(2026, 6, 30)), dict(), "expired", "已于 2026-06-30 失效"),
])
def test_a_line_outside_the_entry_s_rules_is_own_expense_with_the_reason(kw, line, code, words):
    d = decide(entry(**kw), facts(**line), default_b_ratio=100_000)
    assert (d.line_class, d.code, d.own_expense) == ("unlisted", code, True)
    assert words in d.memo and " / " in d.memo  # Chinese / English


def test_within_the_limits_the_line_is_paid_and_flagged_limited():
    d = decide(entry(lmt_medins_lv="level2", lmt_cnt=20_000), facts(institution_level="level2", quantity=10_000, quantity_before=10_000),
               default_b_ratio=100_000)
    assert (d.line_class, d.lmt_used_flag) == ("B", "1")
    per_day = decide(entry(lmt_cnt_day=10_000), facts(quantity=10_000, quantity_before=30_000, quantity_before_day=0), default_b_ratio=100_000)
    assert (per_day.line_class, per_day.lmt_used_flag) == ("B", "1")  # earlier days' quantities do not count against today
    approved = decide(entry(hosp_appr_flag=True), facts(hosp_appr_flag=True), default_b_ratio=100_000)
    assert approved.line_class == "B"


def test_the_split_of_a_capped_class_b_line_in_fen():
    # 12.50 × 2 capped at 10.00: total 25.00, over 5.00, allowed 20.00 × 10% = 2.00 first, 18.00 in scope.
    sp = split_line("B", 1250, 20_000, 1000, 100_000, 0)
    assert (sp.total, sp.own_expense, sp.over_limit, sp.pre_self_pay, sp.in_scope) == (2500, 0, 500, 200, 1800)


@given(
    lv=st.sampled_from(["01", "02", "03"]),
    cap=st.one_of(st.none(), st.integers(0, 10**7)),
    prop=st.one_of(st.none(), st.integers(0, 1_000_000)),
    price=st.integers(0, 10**8),
    qty=st.integers(1, 10**7),
    before=st.integers(0, 10**7),
    lmt=st.one_of(st.none(), st.integers(1, 10**7)),
    level=st.sampled_from(["pharmacy", "community", "level1", "level2", "level3"]),
    min_level=st.one_of(st.none(), st.sampled_from(["level1", "level2", "level3"])),
    kind=st.sampled_from(["outpatient", "emergency", "inpatient", "pharmacy"]),
    rx=st.booleans(),
    prescribed=st.booleans(),
    default=st.integers(0, 1_000_000),
)
def test_any_decision_keeps_the_line_total_whole(lv, cap, prop, price, qty, before, lmt, level, min_level, kind, rx, prescribed, default):
    """det_item_fee_sumamt = fulamt_ownpay_amt + overlmt_amt + preselfpay_amt + inscp_scp_amt, none negative, whatever was decided."""
    e = entry(chrgitm_lv=lv, pric_uplmt_amt=cap, selfpay_prop=prop if lv == "02" else None, lmt_cnt=lmt, lmt_medins_lv=min_level, rx_flag=rx)
    d = decide(e, facts(quantity=qty, quantity_before=before, institution_level=level, visit_kind=kind, prescription=prescribed,
                        prescriber="D1" if prescribed else None), default_b_ratio=default)
    sp = split_line(d.line_class, price, qty, d.price_cap, d.self_pay_ratio, default)
    assert sp.total == sp.own_expense + sp.over_limit + sp.pre_self_pay + sp.in_scope
    assert min(sp.own_expense, sp.over_limit, sp.pre_self_pay, sp.in_scope) >= 0
    assert (sp.own_expense == sp.total) == d.own_expense or sp.total == 0


def test_diff_says_what_was_added_removed_and_changed():
    old = [entry(), entry(hilist_code="001102000010000", hilist_name="诊查费", list_type="201", chrgitm_lv="01")]
    new = [entry(pric_uplmt_amt=900), entry(hilist_code="C0301010010010010001", hilist_name="晶体", list_type="301")]
    d = diff(old, new)
    assert [e.hilist_code for e in d.added] == ["C0301010010010010001"]
    assert [e.hilist_code for e in d.removed] == ["001102000010000"]
    assert [(o.hilist_code, names) for o, _, names in d.changed] == [("XJ01DDC078A001010100483", ("pric_uplmt_amt",))]
