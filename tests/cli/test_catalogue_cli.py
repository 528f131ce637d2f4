"""`yibao catalogue check | import | diff` (in this process, tests/support/cli.py; `check` also as a real process; SQLite and PostgreSQL): a bad file listed error by error (file,
row, field) with exit 1; an import written once however often it is run; what a new version adds, removes and changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import catalogue as tc
from tests.support import cli
from yibao.sandbox import catalogue as demo_catalogue
from yibao.services.catalogue import versions


def yibao(*args: str) -> subprocess.CompletedProcess:
    return cli.yibao(*args, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "400"})


def yibao_process(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("yibao")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "400"})


def test_check_lists_every_error_by_file_row_and_field_and_exits_1(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(tc.text("440300", body=tc.CSV.replace(f"{tc.SERVICE},诊查费,201,01", f"{tc.SERVICE},诊查费,209,01")
                           .replace("头孢克肟胶囊,101,02,10.00", "头孢克肟胶囊,101,02,ten")), encoding="utf-8")
    done = yibao_process("catalogue", "check", str(bad))
    assert done.returncode == 1, done.stderr
    assert "bad.csv:6: list_type: " in done.stderr and "bad.csv:10: pric_uplmt_amt: " in done.stderr, done.stderr
    assert "2 处错误 / error(s)" in done.stderr
    good = yibao("catalogue", "check", str(demo_catalogue.files()[0]))
    assert good.returncode == 0 and json.loads(good.stdout)["entries"] == 220, good.stderr


def test_an_import_is_written_once(db, tmp_path):
    path = tmp_path / "t1.csv"
    path.write_text(tc.text("370200"), encoding="utf-8")
    first = yibao("catalogue", "import", str(path), "--region", "370200", "--database", db.url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"insu_admdvs": "370200", "ver": "370200-T1", "begndate": "2026-01-01", "entries": 18, "created": True,
                                        "added": 18, "changed": 0, "removed": 0}
    again = yibao("catalogue", "import", str(path), "--database", db.url)
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False, again.stderr
    assert [v.ver for v in db.run(lambda c: versions.versions(c, "370200"), write=False)] == ["370200-T1"]
    wrong = yibao("catalogue", "import", str(path), "--region", "440300", "--database", db.url)
    assert wrong.returncode == 2 and "insu_admdvs" in wrong.stderr


def test_diff_says_what_a_new_version_adds_removes_and_changes(tmp_path):
    old, new = tmp_path / "t1.csv", tmp_path / "t2.csv"
    old.write_text(tc.text("440300"), encoding="utf-8")
    body = (tc.CSV.replace("头孢克肟胶囊,101,02,10.00", "头孢克肟胶囊,101,02,9.50").replace(f"{tc.ENDED},已退出药品,101,01,,,,,,,,,0,0,2026-01-01,2026-06-30\n", "")
            + "XA02BCA025A001010100999,雷贝拉唑钠肠溶片,101,02,,,,,,,,,0,1,2027-01-01,\n")
    new.write_text(tc.text("440300", ver="T2", begndate="2027-01-01", body=body), encoding="utf-8")
    done = yibao("catalogue", "diff", str(old), str(new), "--json")
    assert done.returncode == 0, done.stderr
    d = json.loads(done.stdout)
    assert [e["hilist_code"] for e in d["added"]] == ["XA02BCA025A001010100999"]
    assert [e["hilist_code"] for e in d["removed"]] == [tc.ENDED]
    assert d["changed"] == [{"hilist_code": tc.CEFIXIME, "fields": {"pric_uplmt_amt": ["10.00", "9.50"]}}]
    text = yibao("catalogue", "diff", str(old), str(new))
    assert "新增 added 1, 删除 removed 1, 变更 changed 1" in text.stdout and f"~ {tc.CEFIXIME} 头孢克肟胶囊: pric_uplmt_amt: 10.00 → 9.50" in text.stdout
