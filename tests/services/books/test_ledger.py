"""The ledger on SQLite and PostgreSQL: client ids, no overdraft, two-phase transfers with a timeout, zero sum."""

from __future__ import annotations

from datetime import timedelta

import pytest

from yibao.domain.ledger import InsufficientFunds, LedgerError
from yibao.services.books import ledger

SRC, PERSON, INST = "external:440300:contributions", "person:P1", "institution:H1:receivable"


@pytest.fixture
def accounts(db):
    now = db.clock()

    def make(c):
        ledger.ensure_account(c, SRC, "440300", "external_contributions", now)
        ledger.ensure_account(c, PERSON, "440300", "personal_account", now, owner_id="P1", no_overdraft=True)
        ledger.ensure_account(c, INST, "440300", "institution_receivable", now, owner_id="H1")
        ledger.transfer(c, client_id="fund-1", debit=SRC, credit=PERSON, amount=10_000, code="contribution", region="440300", now=now)
    db.run(make)
    return db


def run(db, fn):
    return db.run(lambda c: fn(c, db.clock()))


def bal(db, account):
    return db.run(lambda c: (ledger.balance(c, account), ledger.available(c, account)), write=False)


def test_the_same_client_id_is_one_transfer_and_a_different_use_is_refused(accounts):
    db = accounts
    first = run(db, lambda c, now: ledger.transfer(c, client_id="pay-1", debit=PERSON, credit=INST, amount=3_000, code="t", region="440300", now=now))
    again = run(db, lambda c, now: ledger.transfer(c, client_id="pay-1", debit=PERSON, credit=INST, amount=3_000, code="t", region="440300", now=now))
    assert first.id == again.id and bal(db, PERSON) == (7_000, 7_000)
    with pytest.raises(LedgerError, match="client id"):
        run(db, lambda c, now: ledger.transfer(c, client_id="pay-1", debit=PERSON, credit=INST, amount=1, code="t", region="440300", now=now))


def test_a_personal_account_is_never_overdrawn_and_pending_amounts_count(accounts):
    db = accounts
    run(db, lambda c, now: ledger.transfer(c, client_id="hold-1", debit=PERSON, credit=INST, amount=8_000, code="t", region="440300",
                                           now=now, pending=True, timeout=timedelta(minutes=5)))
    assert bal(db, PERSON) == (10_000, 2_000)  # reserved, not yet spent
    with pytest.raises(InsufficientFunds):
        run(db, lambda c, now: ledger.transfer(c, client_id="pay-2", debit=PERSON, credit=INST, amount=2_001, code="t", region="440300", now=now))
    assert bal(db, PERSON) == (10_000, 2_000)
    assert db.run(ledger.totals, write=False).balanced


def test_post_void_and_expiry(accounts, clock):
    db = accounts

    def hold(client_id, minutes=5):
        return run(db, lambda c, now: ledger.transfer(c, client_id=client_id, debit=PERSON, credit=INST, amount=1_000, code="t",
                                                      region="440300", now=now, pending=True, timeout=timedelta(minutes=minutes)))

    hold("h-post"), hold("h-void"), hold("h-expire", minutes=1)
    assert bal(db, PERSON) == (10_000, 7_000)
    posted = run(db, lambda c, now: ledger.post_pending(c, client_id="post-1", pending_client_id="h-post", now=now))
    assert posted.kind == "post" and bal(db, PERSON) == (9_000, 7_000)
    # posting again with the same client id is the same post; with a new one it is refused
    assert run(db, lambda c, now: ledger.post_pending(c, client_id="post-1", pending_client_id="h-post", now=now)).id == posted.id
    with pytest.raises(LedgerError) as err:
        run(db, lambda c, now: ledger.void_pending(c, client_id="void-x", pending_client_id="h-post", now=now))
    assert err.value.code == "pending_posted"
    run(db, lambda c, now: ledger.void_pending(c, client_id="void-1", pending_client_id="h-void", now=now))
    assert bal(db, PERSON) == (9_000, 8_000)

    clock.advance(minutes=2)  # past h-expire's timeout: it can no longer be posted, and expiry releases it
    with pytest.raises(LedgerError) as err:
        run(db, lambda c, now: ledger.post_pending(c, client_id="post-late", pending_client_id="h-expire", now=now))
    assert err.value.code == "pending_expired"
    assert bal(db, PERSON) == (9_000, 8_000)  # the refusal wrote nothing
    assert run(db, lambda c, now: ledger.expire_pending(c, now)) == 1
    assert bal(db, PERSON) == (9_000, 9_000)
    t = db.run(ledger.totals, write=False)
    assert t.balanced and t.debits_pending == t.credits_pending == 0


def test_expire_pending_releases_every_overdue_reservation(accounts, clock):
    db = accounts
    for i in range(3):
        run(db, lambda c, now, i=i: ledger.transfer(c, client_id=f"h{i}", debit=PERSON, credit=INST, amount=1_000, code="t",
                                                    region="440300", now=now, pending=True, timeout=timedelta(minutes=1 + i)))
    clock.advance(minutes=2, seconds=30)
    assert run(db, lambda c, now: ledger.expire_pending(c, now)) == 2
    assert bal(db, PERSON) == (10_000, 9_000)
    assert db.run(lambda c: ledger.get_transfer(c, "h0"), write=False).state == "expired"
    assert db.run(lambda c: ledger.get_transfer(c, "h2"), write=False).state == "pending"


def test_voiding_an_overdue_hold_releases_it_as_expired(accounts, clock):
    db = accounts
    run(db, lambda c, now: ledger.transfer(c, client_id="h", debit=PERSON, credit=INST, amount=1_000, code="t", region="440300",
                                           now=now, pending=True, timeout=timedelta(minutes=1)))
    clock.advance(minutes=5)
    run(db, lambda c, now: ledger.void_pending(c, client_id="v", pending_client_id="h", now=now))
    assert bal(db, PERSON) == (10_000, 10_000)
    assert db.run(lambda c: ledger.get_transfer(c, "h"), write=False).state == "expired"
