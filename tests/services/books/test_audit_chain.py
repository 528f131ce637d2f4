"""The keyed, anchored audit chain and the ledger checked against it (services/books/audit.py), on SQLite and
PostgreSQL: someone who can write the database truncates a chain, rewinds its head, edits an entry and recomputes
the chain (without the key, or with it), inserts a transfer or edits a balance — `verify` reports each."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import timezone

import pytest
from sqlalchemy import update

from tests.conftest import TEST_KEY
from tests.support import audit as attack
from tests.support.world import seed
from yibao.crypto.pii import Keyring
from yibao.domain.ledger import fund_account, person_account
from yibao.services.books import audit, ledger
from yibao.store.anchors import AnchorLog
from yibao.store.tables import ledger_accounts

REGION = "440300"


@pytest.fixture
def books(db, keyring, audit_anchor):
    world = seed(db, keyring)
    return world, AnchorLog(audit_anchor)


def _run(db):  # noqa: ANN001, ANN202
    async def run(work, *, write=True):  # noqa: ANN001, ANN202
        return db.run(work, write=write)
    return run


def check(db, anchors: AnchorLog | None = None) -> dict[str, audit.ChainReport]:  # noqa: ANN001
    """Verify (against the anchors, when given) and anchor what verified, as `yibao audit verify` does."""
    return {r.region: r for r in asyncio.run(audit.verify_and_anchor(_run(db), anchors))}


def note(db, n: int = 3) -> None:  # noqa: ANN001
    """Entries that move no money (so the ledger cross-check has nothing to say about them)."""
    for i in range(n):
        db.run(lambda c, i=i: audit.append(c, region=REGION, actor="operator:a", action="pii.lookup", subject=f"P{i}", detail={"n": i},
                                           now=db.clock()))


def test_a_sound_book_verifies_and_its_heads_are_anchored_in_a_private_file(db, books):
    _, anchors = books
    reports = check(db, anchors)
    assert reports[REGION].ok and reports[REGION].entries > 5, reports
    lines = anchors.read()
    assert [json.loads(line)["region"] for line in lines] == [REGION]
    assert stat.S_IMODE(os.stat(anchors.path).st_mode) == 0o600
    assert check(db, anchors)[REGION].ok and len(anchors.read()) == 1  # nothing moved: no new line


def test_entries_are_keyed_so_an_edit_recomputed_without_the_key_is_detected(db, books):
    attack.edit_and_recompute(db, REGION, 2, '{"tier":2}')  # the old SHA-256 chain, recomputed after the edit
    report = check(db)[REGION]
    assert not report.ok and "entry 2: content does not match its MAC (altered)" in report.problem

    wrong = Keyring(bytes(range(1, 33))).purpose_key(audit.KEY_PURPOSE)
    attack.edit_and_recompute(db, REGION, 2, '{"tier":2}', digest=_keyed(wrong))  # a guessed key is no better
    assert not check(db)[REGION].ok


def _keyed(root: bytes):  # noqa: ANN202
    key = audit._subkeys(root)[0]
    return lambda prev, row: audit._mac(key, prev, row.region, row.seq, row.at.replace(tzinfo=timezone.utc) if row.at.tzinfo is None
                                        else row.at, row.actor, row.action, row.subject, row.detail, row.transfers)


def test_an_edit_recomputed_with_the_key_is_detected_against_the_anchor(db, books):
    """An insider who has the master key can recompute the MACs; the anchor outside the database still pins the old chain."""
    _, anchors = books
    assert check(db, anchors)[REGION].ok
    attack.edit_and_recompute(db, REGION, 2, '{"tier":2}', digest=_keyed(Keyring(TEST_KEY).purpose_key(audit.KEY_PURPOSE)))
    assert check(db)[REGION].ok  # the chain itself is consistent again
    report = check(db, anchors)[REGION]
    assert not report.ok and "(rewritten)" in report.problem


def test_rewinding_the_head_is_detected_against_the_anchor(db, books):
    _, anchors = books
    assert check(db, anchors)[REGION].ok
    count = len(attack.entries(db, REGION))
    note(db)
    assert check(db, anchors)[REGION].ok  # anchored with the three notes
    attack.rewind(db, REGION, count)  # the notes gone, the head moved back: a consistent chain again
    assert check(db)[REGION].ok  # the MACs alone cannot tell
    report = check(db, anchors)[REGION]
    assert not report.ok and f"recorded {count + 3} entries, the chain has {count} (truncated or rewound)" in report.problem


def test_truncating_a_chain_is_detected_against_the_anchor(db, books):
    _, anchors = books
    assert check(db, anchors)[REGION].ok
    attack.truncate(db, REGION)
    report = check(db, anchors)[REGION]
    assert not report.ok and report.entries == 0 and "(truncated or rewound)" in report.problem


def test_a_transfer_inserted_directly_in_the_database_is_reported(db, books):
    world, _ = books
    attack.forge_transfer(db, debit=fund_account(REGION, "pool"), credit=person_account(world.employee.id), amount=1_000_000_00)
    assert db.run(lambda c: ledger.totals(c), write=False).balanced  # the ledger alone still looks sound
    report = check(db)[REGION]
    assert not report.ok and "transfer forged:1 has no audit entry" in report.problem


def test_a_balance_edited_directly_in_the_database_is_reported(db, books):
    """Two balance rows edited so that the ledger still sums to zero: one personal account credited, another debited
    to match (only accounts that may never be overdrawn keep balance rows)."""
    world, _ = books
    account, other = person_account(world.employee.id), person_account(world.retiree.id)

    def edit(c):  # noqa: ANN001, ANN202
        A = ledger_accounts
        c.execute(update(A).where(A.c.id == account).values(credits_posted=A.c.credits_posted + 5_00))
        c.execute(update(A).where(A.c.id == other).values(debits_posted=A.c.debits_posted + 5_00))
    db.run(edit)
    assert db.run(lambda c: ledger.totals(c), write=False).balanced
    report = check(db)[REGION]
    assert not report.ok and "does not match the sum of its transfers" in report.problem


def test_a_fund_account_row_written_directly_is_reported(db, books):
    """A fund layer derives its balance from its transfers and its row is never written: a number put there is an edit
    (and would mislead anything that read the row rather than the ledger)."""
    pool = fund_account(REGION, "pool")
    before = db.run(lambda c: ledger.balance(c, pool), write=False)
    db.run(lambda c: c.execute(update(ledger_accounts).where(ledger_accounts.c.id == pool).values(credits_posted=500_00)))
    assert db.run(lambda c: ledger.balance(c, pool), write=False) == before  # the balance is still its transfers'
    report = check(db)[REGION]
    assert not report.ok and f"account {pool}: its balance does not match the sum of its transfers" in report.problem


def test_an_anchor_line_not_written_with_the_key_is_reported(db, books):
    _, anchors = books
    assert check(db, anchors)[REGION].ok
    line = json.loads(anchors.read()[0])
    with open(anchors.path, "a") as f:
        f.write(json.dumps({**line, "seq": 1, "hash": "0" * 64}) + "\n")  # an anchor made up to blame a sound chain
    reports = check(db, anchors)
    assert reports[REGION].ok and not reports["anchors"].ok and "line 2 fails its MAC" in reports["anchors"].problem
