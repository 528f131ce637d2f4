"""`yibao audit verify` (in this process, tests/support/cli.py; the refusal as a real process), on SQLite and PostgreSQL: a sound book is OK (and anchored); a chain truncated,
a head rewound, an entry edited and the chain recomputed, or a transfer inserted behind the platform's back exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.support import audit as attack
from tests.support import cli
from tests.support.world import seed
from yibao.domain.ledger import fund_account, person_account
from yibao.services.books import audit

REGION = "440300"


def verify(db) -> subprocess.CompletedProcess:  # noqa: ANN001
    return cli.yibao("audit", "verify", "--database", db.url, env={**os.environ, "YIBAO_SECRET_KEY": TEST_KEY.hex(), "NO_COLOR": "1",
                                                                   "COLUMNS": "400"})


@pytest.mark.parametrize("how, says", [("truncate", "(truncated or rewound)"), ("rewind", "(truncated or rewound)"),
                                       ("edit_and_recompute", "content does not match its MAC (altered)"),
                                       ("forged_transfer", "transfer forged:1 has no audit entry")])
def test_audit_verify_exits_1_for_each_attack_after_a_clean_run(db, keyring, how, says):
    world = seed(db, keyring)
    clean = verify(db)
    assert clean.returncode == 0 and f"OK region {REGION}" in clean.stdout, clean.stdout + clean.stderr
    if how == "truncate":
        attack.truncate(db, REGION)
    elif how == "rewind":
        entries = len(attack.entries(db, REGION))
        for i in range(3):  # entries that move no money: only the anchor knows they were there
            db.run(lambda c, i=i: audit.append(c, region=REGION, actor="operator:a", action="pii.lookup", subject=f"P{i}", detail={},
                                               now=db.clock()))
        assert verify(db).returncode == 0  # anchored with them
        attack.rewind(db, REGION, entries)
    elif how == "edit_and_recompute":
        attack.edit_and_recompute(db, REGION, 2, '{"tier":2}')
    else:
        attack.forge_transfer(db, debit=fund_account(REGION, "pool"), credit=person_account(world.employee.id), amount=1_000_000_00)
    caught = verify(db)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert f"BROKEN region {REGION}" in caught.stdout and says in caught.stdout, caught.stdout


def test_audit_verify_without_the_master_key_refuses_instead_of_making_one(db, tmp_path):
    exe = Path(sys.executable).with_name("yibao")
    env = {k: v for k, v in os.environ.items() if k != "YIBAO_SECRET_KEY"}
    r = subprocess.run([str(exe), "audit", "verify", "--database", db.url], capture_output=True, text=True, timeout=120,
                       env={**env, "YIBAO_SECRET_FILE": str(tmp_path / "no-such.key"), "NO_COLOR": "1"})
    assert r.returncode == 2 and "YIBAO_SECRET_KEY" in r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "no-such.key").exists()
