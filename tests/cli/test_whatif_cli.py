"""`yibao whatif` over the small history of tests/support/whatif.py (figures hand-computed in
tests/services/care/test_whatif.py): the table, --json and --csv say the same; bad arguments are refused by name."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_credit_cli import KEY, yibao, yibao_process
from tests.support.db import Clock
from tests.support.whatif import history, new_policy
from yibao.crypto.pii import Keyring
from yibao.store.db import Database


def test_the_report_as_a_table_as_json_and_as_csv(tmp_path):
    url = f"sqlite:///{tmp_path}/whatif.db"
    db = Database(url, clock=Clock())
    db.create_all()
    h = history(db, Keyring(KEY))
    db.dispose()
    policy = new_policy(tmp_path)
    args = ("whatif", "--policy", str(policy), "--from", "2026-11-22", "--to", "2026-11-24", "--database", url)

    as_json = yibao(*args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["fund_total"] == {"old": "21827.50", "new": "23097.00", "change": "1269.50"}
    assert [(x["layer"], x["change"]) for x in doc["layers"]] == [("pool_fund", "-290.50"), ("serious_illness", "1560.00"),
                                                                  ("large_amount", "0.00"), ("other", "0.00"), ("assistance", "0.00")]
    assert [(g["key"], g["change"]) for g in doc["by_insurance_type"]] == [("employee", "-290.50"), ("resident", "1560.00")]
    assert [(g["key"], g["change"]) for g in doc["by_level"]] == [("community", "-61.50"), ("level3", "1331.00")]
    assert [(p["psn_no"], p["change"]) for p in doc["persons"]] == [(h.world.resident.id, "1560.00"), (h.world.retiree.id, "-220.00"),
                                                                    (h.world.employee.id, "-70.50")]
    assert doc["settlements"]["failed"] == 1 and doc["failures"][0]["code"] == "scheme_not_in_policy"
    assert doc["settlements"]["not_repriced"]["cancelled"] == 1 and doc["settlements"]["not_repriced"]["other_region"] == 1

    as_csv = yibao(*args, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    by = {(r["section"], r["key"]): r for r in rows}
    assert (by["fund_total", "fund_pay_sumamt"]["old"], by["fund_total", "fund_pay_sumamt"]["change"]) == ("21827.50", "1269.50")
    assert by["layer", "serious_illness"]["new"] == "1560.00" and by["level", "community"]["change"] == "-61.50"
    assert by["person", h.world.employee.id]["settlements"] == "2" and by["failure", h.child_setl]["old"] == "238.50"
    assert by["not_repriced", "cancelled"]["settlements"] == "1"

    table = yibao(*args, env={"COLUMNS": "200"})  # wide enough that no figure is folded
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "settlements re-priced 4" in out and "could not be priced 1" in out
    assert "-290.50" in out and "+1560.00" in out and "+1269.50" in out and h.world.resident.id in out
    assert "scheme_not_in_policy" in out and "cancelled, reversed or refunded in full: 1" in out


def test_bad_arguments_are_refused_by_name(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    Database(url).create_all()
    policy = new_policy(tmp_path)
    reversed_ = yibao("whatif", "--policy", str(policy), "--from", "2026-11-24", "--to", "2026-11-22", "--database", url)
    assert reversed_.returncode == 2 and "--from" in reversed_.stderr
    region = yibao("whatif", "--policy", str(policy), "--from", "2026-11-22", "--to", "2026-11-24", "--region", "370200", "--database", url)
    assert region.returncode == 2 and "--region" in region.stderr and "440300" in region.stderr
    missing = yibao("whatif", "--policy", str(tmp_path / "nope.yaml"), "--from", "2026-11-22", "--to", "2026-11-24", "--database", url)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    bad = yibao_process("whatif", "--policy", str(policy), "--from", "2026-13-01", "--to", "2026-11-24", "--database", url)
    assert bad.returncode == 2 and "--from" in bad.stderr


def test_a_job_pointed_at_no_platform_database_is_refused_and_writes_nothing(tmp_path):
    """Run where there is no platform database (the default path, or a --database in a folder that does not exist): one
    line naming the database and what to do, exit 2 — and no database file, folder or key made where it was pointed."""
    policy = new_policy(tmp_path)
    exe = Path(sys.executable).with_name("yibao")
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIBAO_")} | {"NO_COLOR": "1"}
    for extra in ((), ("--database", f"sqlite:///{tmp_path}/nodir/x.db")):
        done = subprocess.run([str(exe), "whatif", "--policy", str(policy), "--from", "2026-01-01", "--to", "2026-01-31", *extra],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "yibao db upgrade" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".yibao").exists() and not (tmp_path / "nodir").exists()
