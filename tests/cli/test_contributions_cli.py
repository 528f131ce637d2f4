"""`yibao contributions import FILE.csv` records contributions collected (in this process, tests/support/cli.py; SQLite and PostgreSQL): every row
or none, a row refused by its line number and field; the credits that follow draw from them."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import TEST_KEY
from tests.support import cli
from tests.support.world import seed
from yibao.services.books import contributions


def yibao(*args: str) -> subprocess.CompletedProcess:
    return cli.yibao(*args, env={**os.environ, "YIBAO_SECRET_KEY": TEST_KEY.hex(), "NO_COLOR": "1", "COLUMNS": "400"})


def test_an_import_records_every_row_or_none(db, keyring, tmp_path):
    seed(db, keyring)
    bad = tmp_path / "bad.csv"
    bad.write_text("region,amount,reference\n440300,1200.00,BANK-1\n440300,12.345,BANK-2\n", encoding="utf-8")
    refused = yibao("contributions", "import", str(bad), "--database", db.url)
    assert refused.returncode == 2 and "line 3" in refused.stderr and "amount" in refused.stderr, refused.stderr
    assert db.run(lambda c: contributions.summary(c, "440300"), write=False).available == 0

    good = tmp_path / "good.csv"
    good.write_text("region,amount,reference\n440300,1200.00,BANK-1\n440300,300.00,BANK-2\n", encoding="utf-8")
    done = yibao("contributions", "import", str(good), "--database", db.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["regions"]["440300"]["available"] == "1500.00"
    again = yibao("contributions", "import", str(good), "--database", db.url)  # the same references: recorded once
    assert again.returncode == 0 and json.loads(again.stdout)["regions"]["440300"]["available"] == "1500.00"
