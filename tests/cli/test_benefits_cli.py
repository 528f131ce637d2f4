"""`yibao benefits run` (in this process, tests/support/cli.py; its refusal as a real process): drives a submitted batch's credits through the SANDBOX bank (one credited, one
returned: the account closed), then a second run has nothing to drive; an unknown batch is refused by name."""

from __future__ import annotations

import json

from tests.cli.test_credit_cli import KEY, yibao, yibao_process
from tests.support.benefits import card_with_account, close_account, luhn_account
from tests.support.credit import connect
from tests.support.db import Clock
from tests.support.identity import admit
from tests.support.world import seed
from yibao.crypto.pii import Keyring
from yibao.domain.benefits import Row
from yibao.services.benefits import batches
from yibao.store.db import Database


def test_a_submitted_batch_is_driven_by_the_job_once(tmp_path, bank):
    url = f"sqlite:///{tmp_path}/benefits.db"
    db = Database(url, clock=Clock())
    db.create_all()
    keyring = Keyring(KEY)
    w = seed(db, keyring)
    admit(db, "bank-440300", kind="bank")
    connect(db, keyring, "bank-440300", bank.channel)
    card_with_account(db, keyring, w.employee.id, "bank-440300", luhn_account(41))
    card_with_account(db, keyring, w.retiree.id, "bank-440300", luhn_account(42))
    close_account(bank.url, luhn_account(42))
    batch = db.run(lambda c: batches.record(c, keyring, db.clock(), region="440300", agency="深圳市民政局", batch_no="CLI-1", purpose="高龄津贴",
                                            rows=[Row(1, w.employee.id, None, "66.00"), Row(2, w.retiree.id, None, "33.00")], actor="test"))
    db.run(lambda c: batches.submit(c, db.clock(), batch_id=batch["batch_id"], actor="test"))  # recorded, not yet sent
    db.dispose()

    first = yibao("benefits", "run", "--database", url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["batches"], report["credited"], report["returned"], report["unclear"]) == (1, 1, 1, [])
    assert report["summaries"][0]["summary"]["credited"] == {"count": 1, "amount": "66.00"}
    second = yibao("benefits", "run", "--database", url)
    assert second.returncode == 0, second.stderr
    assert "credits driven 0" in second.stdout and "batches 0" in second.stdout
    bad = yibao_process("benefits", "run", "--database", url, "--batch", "BB-NOPE")  # a real process's exit status
    assert bad.returncode != 0 and "batch_id" in bad.stderr
