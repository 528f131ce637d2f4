"""Benefits onto the card (seed 001) through the services, against the SANDBOX bank over loopback HTTP, on SQLite and
PostgreSQL: a batch with credited and returned rows summed to the fen, recording and submitting it again changing
nothing, every refused row named, an unclear bank answer resolved by asking — never by sending again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from tests.support.benefits import card_with_account, close_account, luhn_account
from tests.support.credit import connect, move_bank_clock
from tests.support.identity import admit, enrol_adult, id_number_of
from tests.support.world import seed
from yibao.domain.benefits import BatchRefused, Row
from yibao.domain.errors import Conflict
from yibao.services import Context
from yibao.services.benefits import batches, credits, jobs
from yibao.services.books import ledger
from yibao.store.tables import audit_log, benefit_credits, transfers

BANK = "bank-440300"
AGENCY = "深圳市民政局"


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


@pytest.fixture
def holders(db, keyring, bank):
    """The seed's three people with financial cards at the bank; the resident's account closed at the bank since."""
    w = seed(db, keyring)
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)
    accounts = {}
    for n, p in enumerate((w.employee, w.retiree, w.resident), start=1):
        accounts[p.id] = luhn_account(n)
        card_with_account(db, keyring, p.id, BANK, accounts[p.id])
    close_account(bank.url, accounts[w.resident.id])
    return w, accounts


def record(db, keyring, rows, *, batch_no="MZ-2026-12-01", purpose="12月高龄津贴"):  # noqa: ANN001, ANN201
    return db.run(lambda c: batches.record(c, keyring, db.clock(), region="440300", agency=AGENCY, batch_no=batch_no, purpose=purpose,
                                           rows=rows, actor="operator:a"))


def count(db, table) -> int:  # noqa: ANN001
    return db.run(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one(), write=False)


def test_a_batch_is_credited_and_returned_to_the_fen_and_sending_it_again_changes_nothing(db, keyring, holders, bank):
    w, accounts = holders
    rows = [Row(1, w.employee.id, None, "100.00"), Row(2, None, id_number_of(2), "200.50"),
            Row(3, w.resident.id, None, "50.01")]
    batch = record(db, keyring, rows)
    assert (batch["status"], batch["rows"], batch["total"]) == ("recorded", 3, "350.51")
    assert db.run(lambda c: batches.for_holder(c, w.employee.id), write=False) == []  # not submitted: not shown
    transfers_before = count(db, transfers)

    done = run(jobs.submit(Context.for_database(db, keyring), batch["batch_id"], actor="operator:a"))
    assert done["status"] == "done"
    assert done["summary"] == {"rows": 3, "total": "350.51", "credited": {"count": 2, "amount": "300.50"},
                               "returned": {"count": 1, "amount": "50.01"}, "open": {"count": 0, "amount": "0.00"}}
    by_row = {c["row"]: c for c in done["credits"]}
    assert [by_row[n]["status"] for n in (1, 2, 3)] == ["credited", "credited", "returned"]
    assert (by_row[3]["return_code"], by_row[1]["return_code"]) == ("ACCOUNT_CLOSED", None)
    booked = bank.runtime.books.payouts  # the bank's own books: each credit once, to the holder's account, to the fen
    assert {(booked[c["instruction_no"]].payee_account, booked[c["instruction_no"]].amount_fen, booked[c["instruction_no"]].status)
            for c in done["credits"]} == {(accounts[w.employee.id], 100_00, "CONFIRMED"), (accounts[w.retiree.id], 200_50, "CONFIRMED"),
                                          (accounts[w.resident.id], 50_01, "RETURNED")}
    assert booked[by_row[1]["instruction_no"]].payee_name == "测试1"

    # Not the platform's money: no ledger transfer, the books still sum to zero; each outcome is in the audit trail.
    assert count(db, transfers) == transfers_before and db.run(lambda c: ledger.totals(c), write=False).balanced
    actions = db.run(lambda c: c.execute(select(audit_log.c.action, func.count()).where(audit_log.c.action.like("benefits.%"))
                                         .group_by(audit_log.c.action)).all(), write=False)
    assert dict(actions) == {"benefits.record": 1, "benefits.submit": 1, "benefits.credited": 2, "benefits.returned": 1}

    mine = db.run(lambda c: batches.for_holder(c, w.resident.id), write=False)
    assert [(m["agency"], m["purpose"], m["amount"], m["status"], m["return_code"]) for m in mine] == \
        [(AGENCY, "12月高龄津贴", "50.01", "returned", "ACCOUNT_CLOSED")]

    calls = bank.runtime.books.calls
    again = record(db, keyring, rows)  # the agency sends the same batch again: the one already recorded
    assert again["batch_id"] == batch["batch_id"]
    resubmitted = run(jobs.submit(Context.for_database(db, keyring), batch["batch_id"], actor="operator:a"))
    assert resubmitted["summary"] == done["summary"] and resubmitted["run"]["driven"] == 0
    assert bank.runtime.books.calls == calls and count(db, benefit_credits) == 3  # nothing asked, nothing sent, nothing added
    with pytest.raises(Conflict) as e:
        record(db, keyring, rows[:2])  # its number with other rows
    assert (e.value.field, e.value.code) == ("batch_no", "batch_no_used")


def test_every_refused_row_is_named_nothing_is_recorded_and_the_corrected_list_sent_at_once_is_one_batch(db, keyring, holders):
    w, _ = holders
    carded = enrol_adult(db, keyring, n=31, name="无卡者")  # insured, no financial card
    rows = [Row(1, w.employee.id, None, "10.00"), Row(2, "P-NOBODY", None, "10.00"), Row(3, None, id_number_of(9), "10.00"),
            Row(4, carded.id, None, "10.00"), Row(5, w.retiree.id, None, "0.00"), Row(6, w.resident.id, None, "-3.00"),
            Row(7, w.employee.id, None, "5.00"), Row(8, None, None, "1.00"), Row(9, None, id_number_of(9), "abc")]
    with pytest.raises(BatchRefused) as e:
        record(db, keyring, rows)
    got = [(d["row"], d["field"], d["code"]) for d in e.value.details]
    assert got == [(2, "psn_no", "unknown_person"), (3, "id_number", "unknown_person"), (4, "psn_no", "no_card_account"),
                   (5, "amount", "amount_not_positive"), (6, "amount", "amount_not_positive"), (7, "psn_no", "duplicate_person"),
                   (8, "psn_no", "person_unnamed"), (9, "id_number", "unknown_person"), (9, "amount", "invalid_number")]
    assert e.value.field == "rows[2].psn_no" and "9 行被拒绝" in e.value.message_zh
    assert count(db, benefit_credits) == 0

    # The corrected list sent four times at once (a retrying agency, two operators): one batch.
    from concurrent.futures import ThreadPoolExecutor

    good = [Row(1, w.employee.id, None, "10.00"), Row(2, w.retiree.id, None, "20.00")]
    with ThreadPoolExecutor(4) as pool:
        ids = {b["batch_id"] for b in pool.map(lambda _: record(db, keyring, good, batch_no="MZ-RACE"), range(4))}
    assert len(ids) == 1 and count(db, benefit_credits) == 2


def test_an_unclear_answer_is_resolved_by_asking_the_bank_not_by_sending_again(db, keyring, holders, bank):
    w, _ = holders
    batch = record(db, keyring, [Row(1, w.employee.id, None, "88.88"), Row(2, w.retiree.id, None, "11.11")], batch_no="CL-1",
                   purpose="残疾人两项补贴")
    db.run(lambda c: batches.submit(c, db.clock(), batch_id=batch["batch_id"], actor="operator:a"))
    first, second = f"{batch['batch_id']}-1", f"{batch['batch_id']}-2"
    # Row 1's instruction reached the bank but its answer was lost (a crash, a timeout): the bank has it, we say sending.
    run(bank.channel.payout(first, payee_account=luhn_account(1), payee_name="测试1", amount_fen=88_88, purpose="lost"))
    run(bank.knobs(server_error_rate=1.0))  # now the bank answers nothing trustworthy
    ctx = Context.for_database(db, keyring)
    unclear = run(jobs.run(ctx, batch_id=batch["batch_id"], actor="operator:a"))
    assert (unclear["credited"], [u["credit_id"] for u in unclear["unclear"]]) == (0, [first, second])
    assert db.run(lambda c: batches.view(c, batch["batch_id"]), write=False)["summary"]["open"] == {"count": 2, "amount": "99.99"}

    run(bank.knobs(server_error_rate=0.0, settle_delay_ms=60_000))  # answers again; pays a minute after accepting
    calls = bank.runtime.books.calls
    assert run(credits.drive(ctx, first, actor="operator:a")).state == "credited"  # booked (and paid) before the answer was lost
    assert bank.runtime.books.calls - calls == 1  # asked once, found it booked: not sent again
    assert run(credits.drive(ctx, second, actor="operator:a")).state == "accepted"  # never reached the bank: sent now
    run(move_bank_clock(bank, 1))
    report = run(jobs.run(ctx, actor="operator:a"))  # the job over every open batch
    assert (report["driven"], report["credited"], report["unclear"]) == (1, 1, [])
    assert len([k for k in bank.runtime.books.payouts if k.startswith(batch["batch_id"])]) == 2
    view = db.run(lambda c: batches.view(c, batch["batch_id"]), write=False)
    assert view["status"] == "done" and view["summary"]["credited"] == {"count": 2, "amount": "99.99"}
