"""`yibao quote` as a user runs it: exit codes, output — as a real process, and the many refusals of bad input in this
process (tests/support/cli.py: the same statuses, output and tracebacks, without a process's second of start-up)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sz-employee-inpatient.json"
NATIONAL = ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc",
            "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc"]


def process(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "yibao.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT, input=stdin)


def run(*args, stdin=None, env=None):
    return cli.yibao(*args, cwd=ROOT, input=stdin, env=env)


def test_quote_json_has_national_fields_and_policy_version():
    r = process("quote", EXAMPLE, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for key in NATIONAL:
        assert isinstance(doc[key], str) and "." in doc[key], key
    assert doc["medfee_sumamt"] == "6635.00"
    assert doc["hifp_pay"] == "4075.20"  # (5128.00 − 600.00) × 90%
    assert doc["acct_pay"] == "1000.00" and doc["psn_cash_pay"] == "1559.80" and doc["balc"] == "0.00"
    assert doc["policy_version"] == "440300-2026.1"
    line = doc["lines"][0]
    assert line == {"code": "XJ01DDC078A001010100483", "name": "头孢克肟胶囊", "class": "B", "det_item_fee_sumamt": "25.00", "fulamt_ownpay_amt": "0.00",
                    "overlmt_amt": "5.00", "preselfpay_amt": "2.00", "inscp_scp_amt": "18.00"}
    assert any("乙类" in e["zh"] for e in doc["explanation"])


def test_quote_table_shows_split_and_explanation():
    r = process("quote", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert "hifp_pay" in r.stdout and "4075.20" in r.stdout and "440300-2026.1" in r.stdout
    assert "统筹基金支付" in r.stdout and "Pooled fund" in r.stdout


def _bill_with(tmp_path, mutate):
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["lines"][0].update(unit_price="12.345"), "lines[0].unit_price"),
    (lambda d: d["lines"][1].update(quantity="-1"), "lines[1].quantity"),
    (lambda d: d["lines"][0].update(unit_price="abc"), "lines[0].unit_price"),
    (lambda d: d["lines"][0].update(unit_price=""), "lines[0].unit_price"),
    (lambda d: d["lines"][0].update({"class": "D"}), "lines[0].class"),
    (lambda d: d["person"].update(insurance_type="military"), "person.insurance_type"),
    (lambda d: d["person"].update(tier=3), "person.tier"),
    (lambda d: d["person"].update(hardship="rich"), "person.hardship"),
    (lambda d: d.update(treatment_region="370200"), "person.filing"),
    (lambda d: d.update(date="2026-13-01"), "date"),
    (lambda d: d.update(date="2031-01-01"), "date"),
    (lambda d: d.update(insured_region="110000"), "insured_region"),
    (lambda d: d.pop("visit"), "visit"),
    (lambda d: d.update(lines=[]), "lines"),
    (lambda d: d["accumulators"].update(pool_fund_paid="-5"), "accumulators.pool_fund_paid"),
    (lambda d: d["accumulators"].update(typo="1"), "accumulators.typo"),
    (lambda d: d["account"].update(payer="guardian"), "account.payer"),
    (lambda d: d["visit"].update(institution_level="pharmacy"), "visit.institution_level"),
    # found by a new user: nulls, misspelt keys, loose dates, oversized numbers
    (lambda d: d["lines"][0].update(unit_price=None), "lines[0].unit_price"),
    (lambda d: d["account"].update(balance=None), "account.balance"),
    (lambda d: d["accumulators"].update(pool_fund_paid=None), "accumulators.pool_fund_paid"),
    (lambda d: d["accumulators"].update(large_amount_paid=None), "accumulators.large_amount_paid"),
    (lambda d: d.update(acount=d.pop("account")), "acount"),
    (lambda d: d["lines"][0].update(price_cp=d["lines"][0].pop("price_cap")), "lines[0].price_cp"),
    (lambda d: d["person"].update(agee=40), "person.agee"),
    (lambda d: d.update(date="20261122"), "date"),
    (lambda d: d.update(date="2026-W47-7"), "date"),
    (lambda d: d["lines"][0].update(unit_price="9" * 40), "lines[0].unit_price"),
    (lambda d: d["person"].pop("tier"), "person.tier"),
])
def test_bad_input_exits_2_naming_the_field(tmp_path, mutate, field):
    r = run("quote", _bill_with(tmp_path, mutate))
    assert r.returncode == 2
    assert field in r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


@pytest.mark.parametrize("text", [
    "[" * 100_000,  # nesting
    '{"date": ' + "9" * 5000 + "}",  # an integer beyond Python's conversion limit
    '{"date": "2026-11-22", "date": "2026-11-23"}',  # duplicate key
    '{"date": NaN}',
    "[]",
    "",
])
def test_hostile_or_odd_json_exits_2_without_traceback(tmp_path, text):
    path = tmp_path / "bill.json"
    path.write_text(text, encoding="utf-8")
    r = run("quote", path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert run("quote", path, "--json").returncode == 0


def test_cross_region_result_names_both_policy_files():
    r = run("quote", ROOT / "examples" / "nb-employee-cross-region-temporary.json", "--json")
    doc = json.loads(r.stdout)
    assert doc["policy_version"] == "330200-2026.2" and doc["catalogue_version"] == "440300-2026.1"
    assert len(doc["catalogue_digest"]) == 12 and doc["catalogue_digest"] != doc["policy_digest"]
    assert doc["pool_prop_selfpay"] == "0.8200" and doc["cvlserv_pay"] == "0.00" and doc["hifes_pay"] == "0.00"


def test_readme_example_implants_at_their_own_ratio():
    """README's quote example (examples/nb-employee-implant.json): Ningbo's implants paid at their own fund ratio, the
    level-3 deductible a share of the average wage. By hand: deductible 126600.00 × 0.8% = 1012.80; screws 4800.00,
    15% first = 720.00, 4080.00 in scope; the implants 32000.00 + 4080.00 = 36080.00 × 80% = 28864.00; the ordinary
    15800.00 + 800.00 = 16600.00, less the deductible, 15587.20 × 88% = 13716.736; fund 42580.736 → 42580.74; patient
    53400.00 − 42580.74 = 10819.26, the account 3000.00, cash 7819.26."""
    r = run("quote", ROOT / "examples" / "nb-employee-implant.json", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["act_pay_dedc"], doc["hifp_pay"], doc["psn_part_amt"], doc["acct_pay"], doc["psn_cash_pay"]) == (
        "1012.80", "42580.74", "10819.26", "3000.00", "7819.26")
    item = [e for e in doc["explanation"] if e["clause"].endswith("item_ratios[1]")]
    assert [(e["zh"], e["en"]) for e in item] == [("按项目比例支付（植入材料）：¥36080.00 × 80% = ¥28864.00",
                                                  "Paid at the item's own ratio (implants): ¥36080.00 × 80% = ¥28864.00")]


def test_readme_quote_example_is_the_real_output():
    """Every line of README's abridged `yibao quote` output is a line the command prints (the policy digest included,
    so an edit of Ningbo's file that changes it is caught here)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ yibao quote examples/nb-employee-implant.json\n"
    assert command in readme
    shown = [ln[2:].rstrip() for ln in readme.split(command, 1)[1].split("  ```", 1)[0].splitlines()]
    assert len(shown) >= 10
    r = run("quote", "examples/nb-employee-implant.json", env={**os.environ, "COLUMNS": "110"})
    assert r.returncode == 0, r.stderr
    printed = {ln.rstrip() for ln in r.stdout.splitlines()}
    assert [ln for ln in shown if ln not in printed] == []


@pytest.mark.parametrize("bill", ["docs/quote.md", "examples/nb-employee-implant.json"])
def test_quote_fits_an_80_column_terminal(bill, tmp_path):
    """At COLUMNS=80 no line is wider than 80 cells (a Chinese character is two; the explanation's lines were up to 176
    wide), and every word of every explanation is still printed (whitespace aside, where a line was broken)."""
    from rich.cells import cell_len

    if bill.endswith(".md"):  # the example bill docs/quote.md shows under "## Bill"
        text = (ROOT / bill).read_text(encoding="utf-8").split("## Bill\n```json\n", 1)[1].split("```", 1)[0]
        bill = tmp_path / "bill.json"
        bill.write_text(text, encoding="utf-8")
    r = run("quote", bill, env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    wide = [(cell_len(ln), ln) for ln in r.stdout.splitlines() if cell_len(ln) > 80]
    assert wide == []
    explanation = json.loads(run("quote", bill, "--json").stdout)["explanation"]
    assert len(explanation) >= 5
    printed = "".join(r.stdout.split())
    for e in explanation:
        for said in (e["zh"], f"{e['en']} ({e['clause']})"):
            assert "".join(said.split()) in printed, said


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    r = process("quote", bad)
    assert r.returncode == 2 and "JSON" in r.stderr and "Traceback" not in r.stderr
    r = process("quote", tmp_path / "missing.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_quote_with_explicit_policy_file(tmp_path):
    policy = ROOT / "src" / "yibao" / "policies" / "440300-2026.yaml"
    r = run("quote", EXAMPLE, "--policy", policy, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["hifp_pay"] == "4075.20"
    other = ROOT / "src" / "yibao" / "policies" / "370200-2026.yaml"
    r = run("quote", EXAMPLE, "--policy", other)
    assert r.returncode == 2 and "insured_region" in r.stderr


def test_policy_check_and_demo(tmp_path):
    good = sorted((ROOT / "src" / "yibao" / "policies").glob("*.yaml"))
    r = run("policy", "check", *good)
    assert r.returncode == 0 and r.stdout.count("OK") == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: x\n", encoding="utf-8")
    r = run("policy", "check", bad, *good)  # every file is checked, the bad one reported
    assert r.returncode == 2 and r.stdout.count("OK") == 3 and "bad.yaml" in r.stderr
    (tmp_path / "broken.json").write_text("{}", encoding="utf-8")
    r = run("demo", "--examples", tmp_path)
    assert r.returncode == 2 and "broken.json" in r.stderr
    r = run("demo")
    assert r.returncode == 0 and "Traceback" not in r.stdout
    for example in (ROOT / "examples").glob("*.json"):
        assert example.name in r.stdout


@pytest.mark.parametrize("width", [130, 120, 80, 60, 40])
def test_fee_lines_are_whole_at_every_width(width):
    """At any width the fee lines keep every code, name, class and amount whole — no column squeezed to nothing or cut
    with "…" (at 80 columns the code, name and class columns used to be zero wide)."""
    import io

    from rich.cells import cell_len
    from rich.console import Console

    from yibao.cli import render
    from yibao.formats.bill_json import bill_from_mapping, loads_bill_text
    from yibao.services.care.quote import quote

    s = quote(bill_from_mapping(loads_bill_text((ROOT / "examples" / "nb-employee-implant.json").read_text(encoding="utf-8"))))
    out = io.StringIO()
    render(s, Console(file=out, width=width, color_system=None))
    text = out.getvalue()
    tables = text.split("说明 Explanation", 1)[0].splitlines()  # the explanation is soft-wrapped: the terminal folds it
    assert max(cell_len(ln) for ln in tables) <= width
    assert "…" not in text
    fee_lines = text.split("结算 Settlement", 1)[0]
    words = set(fee_lines.replace("│", " ").split())
    for ln in s.lines:
        assert {ln.code, ln.name, ln.line_class} <= words, (width, ln.code, ln.name)
    assert {"15800.00", "32000.00", "4800.00", "720.00", "4080.00", "800.00"} <= words
    for head in ("total", "own", "over", "pre", "scope"):
        assert head in words, (width, head)


def test_quote_at_80_columns_and_in_a_pipe_shows_the_codes():
    for env in ({**os.environ, "COLUMNS": "80"}, {k: v for k, v in os.environ.items() if k != "COLUMNS"}):
        r = run("quote", ROOT / "examples" / "nb-employee-implant.json", env=env)
        assert r.returncode == 0, r.stderr
        assert "C1906807976000000010" in r.stdout and "人工髋关节" in r.stdout and "┃┃" not in r.stdout
        assert max(len(ln) for ln in r.stdout.split("说明 Explanation", 1)[0].splitlines()) <= 80
