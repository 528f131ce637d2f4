"""Personal-account credits draw only from contributions collected, and above the region's threshold need a second
operator (services/people/account_credits.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.world import seed
from yibao.domain.errors import Conflict, Forbidden
from yibao.domain.ledger import InsufficientFunds, contributions_account, person_account
from yibao.services.books import audit, contributions, ledger
from yibao.services.people import account_credits
from yibao.store.tables import account_credits as C
from yibao.store.tables import audit_log, transfers

REGION = "440300"
THRESHOLD = 10_000_00  # 440300-2026.yaml personal_account.credit_approval_threshold


@pytest.fixture
def world(db, keyring):
    return seed(db, keyring)  # the seed's credits drew everything it collected: nothing is left to credit


def _count(db, table) -> int:  # noqa: ANN001
    return db.run(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one(), write=False)


def _collect(db, amount: int, reference: str) -> None:  # noqa: ANN001
    db.run(lambda c: contributions.record_collection(c, db.clock(), region=REGION, amount=amount, reference=reference, actor="operator:a"))


def _balance(db, person_id: str) -> int:  # noqa: ANN001
    return db.run(lambda c: ledger.balance(c, person_account(person_id)), write=False)


def _request(db, person_id: str, amount: int, client_id: str, actor: str = "operator:a"):  # noqa: ANN001, ANN202
    return db.run(lambda c: account_credits.request(c, db.clock(), person_id=person_id, amount=amount, client_id=client_id, actor=actor))


def _approve(db, credit_id: str, actor: str):  # noqa: ANN001, ANN202
    return db.run(lambda c: account_credits.approve(c, db.clock(), credit_id=credit_id, actor=actor))


def test_a_credit_above_what_was_collected_is_refused_in_words_and_writes_nothing(db, world):
    pid = world.employee.id
    before = (_balance(db, pid), _count(db, C), _count(db, transfers), _count(db, audit_log))
    with pytest.raises(Conflict) as refused:
        _request(db, pid, 9_999_999_999_999, "credit:huge")  # ¥99,999,999,999.99: nothing was collected for it
    assert (refused.value.field, refused.value.code) == ("amount", "exceeds_collected")
    assert "请先登记缴费归集" in refused.value.message_zh and "record the collection first" in refused.value.message_en
    assert (_balance(db, pid), _count(db, C), _count(db, transfers), _count(db, audit_log)) == before

    _collect(db, 100_00, "BANK-0001")
    with pytest.raises(Conflict, match="exceeds"):
        _request(db, pid, 100_01, "credit:one-fen-too-many")
    assert _request(db, pid, 100_00, "credit:exact").status == account_credits.CREDITED
    assert _balance(db, pid) == before[0] + 100_00
    assert db.run(lambda c: contributions.summary(c, REGION), write=False).available == 0
    with pytest.raises(Conflict, match="exceeds"):
        _request(db, pid, 1, "credit:after")


def test_the_contributions_account_itself_is_never_overdrawn(db, world):
    """Below the use case, the ledger's no-overdraft account refuses a draw past what was collected."""
    _collect(db, 50_00, "BANK-0002")
    with pytest.raises(InsufficientFunds):
        db.run(lambda c: ledger.transfer(c, client_id="bypass", debit=contributions_account(REGION), credit=person_account(world.employee.id),
                                         amount=50_01, code="contribution", region=REGION, now=db.clock()))


def test_a_collection_reference_twice_is_one_collection_and_with_another_amount_is_refused(db, world):
    _collect(db, 70_00, "BANK-0003")
    _collect(db, 70_00, "BANK-0003")
    assert db.run(lambda c: contributions.summary(c, REGION), write=False).available == 70_00
    with pytest.raises(Conflict) as reused:
        _collect(db, 80_00, "BANK-0003")
    assert (reused.value.field, reused.value.code) == ("reference", "reference_reused")


def test_below_the_threshold_one_operator_suffices(db, world):
    pid = world.employee.id
    _collect(db, THRESHOLD, "BANK-0004")
    before = _balance(db, pid)
    done = _request(db, pid, THRESHOLD, "credit:at-threshold")
    assert (done.status, done.requested_by, done.approved_by) == (account_credits.CREDITED, "operator:a", None)
    assert _balance(db, pid) == before + THRESHOLD


def test_above_the_threshold_a_second_operator_approves_and_the_money_moves_once(db, world):
    pid = world.employee.id
    amount = THRESHOLD + 1
    _collect(db, amount, "BANK-0005")
    before = _balance(db, pid)
    asked = _request(db, pid, amount, "credit:big")
    assert asked.status == account_credits.AWAITING and _balance(db, pid) == before  # nothing moved yet
    assert db.run(lambda c: contributions.summary(c, REGION), write=False).available == amount
    assert _request(db, pid, amount, "credit:big") == asked  # the same request again is the same request

    with pytest.raises(Forbidden) as same:
        _approve(db, asked.id, "operator:a")
    assert (same.value.field, same.value.code) == ("credit_id", "same_operator")
    assert _balance(db, pid) == before

    done = _approve(db, asked.id, "operator:b")
    assert (done.status, done.approved_by) == (account_credits.CREDITED, "operator:b")
    assert _balance(db, pid) == before + amount
    assert _approve(db, asked.id, "operator:b") == done  # approved twice: once
    assert _approve(db, asked.id, "operator:c") == done
    assert _balance(db, pid) == before + amount
    moved = db.run(lambda c: c.execute(select(func.count()).select_from(transfers).where(transfers.c.client_id == "credit:big")).scalar_one(),
                   write=False)
    assert moved == 1
    trail = [(e.action, e.actor) for e in db.run(lambda c: audit.entries(c, REGION, 5), write=False) if e.subject == pid]
    assert ("account.credit_request", "operator:a") in trail and ("account.credit", "operator:b") in trail
    assert all(r.ok for r in db.run(audit.verify, write=False))


def test_an_approval_after_the_collected_money_was_drawn_is_refused_and_the_request_waits(db, world):
    _collect(db, THRESHOLD + 1, "BANK-0006")
    asked = _request(db, world.employee.id, THRESHOLD + 1, "credit:late")
    _request(db, world.retiree.id, 1, "credit:meanwhile")
    with pytest.raises(Conflict, match="exceeds"):
        _approve(db, asked.id, "operator:b")
    assert db.run(lambda c: account_credits.get(c, asked.id), write=False).status == account_credits.AWAITING


def test_an_immediate_credit_above_the_threshold_is_refused_and_leaves_no_request(db, world):
    _collect(db, THRESHOLD + 1, "BANK-0007")
    before = _count(db, C)
    with pytest.raises(Conflict) as refused:
        db.run(lambda c: account_credits.credit_account(c, db.clock(), person_id=world.employee.id, amount=THRESHOLD + 1,
                                                        client_id="credit:import", actor="import"))
    assert refused.value.code == "needs_approval" and _count(db, C) == before
