"""Monthly clearing through the services, against the SANDBOX bank over loopback HTTP, on SQLite and PostgreSQL: a month
cleared to the fen (receivable, deposit, a backstop recovery, the bank's confirmation), a second run changing nothing,
a withdrawn application, declared figures that differ (paid at the platform's), the bank failing then succeeding, a lost
answer that is asked about before anything is sent again."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.support.credit import connect, move_bank_clock
from tests.support.identity import admit
from tests.support.payments import payment_world
from tests.support.settlement import open_with_lines, settle
from yibao.domain import clearing as rules
from yibao.domain.errors import Conflict, InputError
from yibao.domain.ledger import clearing_payout, institution_deposit, institution_receivable
from yibao.domain.money import apply_ratio
from yibao.services import Context
from yibao.services.books import ledger
from yibao.services.care import settlement
from yibao.services.clearing import applications, jobs, payments
from yibao.services.payments import liabilities
from yibao.store.tables import clearing_payments
from yibao.store.tables import settlements as S

BANK = "bank-440300"
GOOD_ACCOUNT = "6222020000123456782"  # passes the sandbox bank's Luhn check
BAD_ACCOUNT = "6222020000123456781"
NOVEMBER = rules.Month(2026, 11)


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


@pytest.fixture
def month(db, keyring, clock, wxpay, bank):
    """November at the seed's hospital: two settlements, one settled and cancelled, a one-code payment charged 6.00 of
    backstop liability; the agency's bank connected, the hospital's payee on file; then December 2nd (one December
    settlement, not November's)."""
    pw = payment_world(db, keyring, wxpay, limit=50000, balance=20000)
    w = pw.w
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)
    settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "MSG-N1")
    settle(db, w.hospital, open_with_lines(db, w.hospital, w.retiree.id).id, "MSG-N2", use=False)
    gone = settle(db, w.hospital, open_with_lines(db, w.hospital, w.resident.id).id, "MSG-N3", use=False)
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=gone["setl_id"], actor="test"))
    order = pw.pay(key="k-onecode", use_account=True)
    assert order.status == "completed"
    db.run(lambda c: liabilities.record(c, db.clock(), order_id=order.id, amount=6_00, cause="冒用他人医保码", actor="test"))
    november = db.run(lambda c: c.execute(select(S).where(S.c.institution_id == w.hospital.id, S.c.status == "settled")).all(), write=False)
    clock.now = clock.now.replace(month=12, day=1, hour=20)  # Beijing 2 December 04:00: November has ended
    settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "MSG-D1")
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=w.hospital.id, account_no=GOOD_ACCOUNT, account_name="人民医院",
                                            actor="test"))
    fund = sum(int(r.fund_total) for r in november)
    account = sum(int(r.account_pay) for r in november)
    return pw, fund, account, november


def apply(db, inst, *, fund: int, account: int, psntime: int = 3, month: rules.Month = NOVEMBER, clr_type: str = "11"):  # noqa: ANN001, ANN201
    return db.run(lambda c: applications.apply(
        c, db.clock(), institution=inst, clr_type=clr_type, clr_way="1", setlym=month.setlym, psntime=psntime, medfee_sumamt=0, med_sumfee=0,
        fund_appy_sum=fund, cash_payamt=0, acct_pay=account, begndate=month.first_day, enddate=month.last_day, actor="test"))


def balances(db, inst_id: str) -> dict[str, int]:  # noqa: ANN001
    def read(c):  # noqa: ANN001, ANN202
        assert ledger.totals(c).balanced
        return {"receivable": ledger.balance(c, institution_receivable(inst_id)), "deposit": ledger.balance(c, institution_deposit(inst_id)),
                "payout": ledger.balance(c, clearing_payout("440300"))}
    return db.run(read, write=False)


def ctx(db, keyring):  # noqa: ANN001, ANN201
    return Context.for_database(db, keyring)


def test_a_month_is_cleared_to_the_fen_and_a_second_run_changes_nothing(db, keyring, month, bank):
    pw, fund, account, november = month
    h = pw.w.hospital
    assert len(november) == 3 and fund > 0 and account > 0  # the cancelled one is not among them
    december = db.run(lambda c: c.execute(select(S).where(S.c.msgid == "MSG-D1")).one(), write=False)
    app = apply(db, h, fund=fund, account=account)
    assert (app["status"], app["clr_stas"], app["late"], app["declare_by"]) == ("applied", "10", False, "2026-12-10")
    review = db.run(lambda c: applications.review(c, app["clr_appy_evt_id"]), write=False)
    assert review["agrees"] is False  # psntime and fees were declared as 0 / 3 … only fund and account matter for payment
    assert review["figures"]["fund_appy_sum"]["difference"] == "0.00" and review["figures"]["acct_pay"]["difference"] == "0.00"
    deposit = apply_ratio(fund, 50_000)
    payable = fund + account - deposit - 6_00
    assert review["payable"]["payable"] == f"{payable // 100}.{payable % 100:02d}"
    before = balances(db, h.id)
    # November's receivable: what its settlements credited, less the cancel and the liability; plus December's settlement
    assert before["receivable"] == fund + account - 6_00 + int(december.fund_total) + int(december.account_pay)

    report = run(jobs.run_month(ctx(db, keyring), NOVEMBER))
    assert (report["cleared"], report["awaiting_review"], report["failed"], report["awaiting_confirmation"]) == (1, [], [], [])
    after = balances(db, h.id)
    assert after["receivable"] == before["receivable"] - payable - deposit
    assert after["receivable"] == int(december.fund_total) + int(december.account_pay)  # November nets to zero, to the fen
    assert (after["deposit"], after["payout"]) == (deposit, payable)
    view = db.run(lambda c: applications.status(c, institution=h, app_id=app["clr_appy_evt_id"]), write=False)
    assert (view["status"], view["clr_stas"], view["deposit"], view["recoveries"]) == ("cleared", "50", f"{deposit / 100:.2f}", "6.00")
    [instruction] = view["payments"]
    assert instruction["status"] == "confirmed" and instruction["bank_ref"]
    booked = bank.runtime.books.payouts[instruction["instruction_no"]]  # the bank's own books: paid once, the amount to the fen
    assert (booked.status, booked.amount_fen, booked.payee_account) == ("CONFIRMED", payable, GOOD_ACCOUNT)

    again = run(jobs.run_month(ctx(db, keyring), NOVEMBER))
    assert (again["cleared"], again["already_cleared"], again["paid"]) == (0, 1, "0.00")
    assert balances(db, h.id) == after and len([p for p in bank.runtime.books.payouts if p.startswith(app["clr_appy_evt_id"])]) == 1
    assert run(payments.pay(ctx(db, keyring), app["clr_appy_evt_id"], actor="test")).state == "cleared" and balances(db, h.id) == after


def test_one_application_at_a_time_withdrawn_before_acceptance_and_paid_at_the_platforms_figures(db, keyring, month, clock):
    pw, fund, account, _ = month
    h = pw.w.hospital
    with pytest.raises(Conflict) as e:
        apply(db, h, fund=fund, account=account, month=rules.Month(2026, 12))
    assert (e.value.field, e.value.code) == ("setlym", "month_not_ended")
    first = apply(db, h, fund=fund, account=account)
    with pytest.raises(Conflict) as e:
        apply(db, h, fund=fund, account=account)
    assert e.value.code == "already_applied"
    withdrawn = db.run(lambda c: applications.withdraw(c, db.clock(), institution=h, app_id=first["clr_appy_evt_id"], actor="test"))
    assert (withdrawn["status"], withdrawn["clr_stas"]) == ("withdrawn", None)
    clock.advance(days=10)  # 12 December: after the 10th — late, accepted and marked
    inflated = apply(db, h, fund=fund + 100_00, account=account)  # declares 100.00 more than the fund paid
    assert inflated["late"] is True
    report = run(jobs.run_month(ctx(db, keyring), NOVEMBER))
    [waiting] = report["awaiting_review"]
    assert waiting["clr_appy_evt_id"] == inflated["clr_appy_evt_id"] and waiting["fund_appy_sum"]["difference"] == "100.00"
    assert balances(db, h.id)["payout"] == 0  # the job paid nothing it had not accepted
    approved = db.run(lambda c: applications.approve(c, db.clock(), app_id=inflated["clr_appy_evt_id"], actor="operator:a"))
    deposit = apply_ratio(fund, 50_000)
    assert approved["payable"] == f"{(fund + account - deposit - 6_00) / 100:.2f}" and approved["fund_paid"] == f"{fund / 100:.2f}"
    with pytest.raises(Conflict) as e:  # accepted: no longer withdrawn
        db.run(lambda c: applications.withdraw(c, db.clock(), institution=h, app_id=inflated["clr_appy_evt_id"], actor="test"))
    assert e.value.code == "already_accepted"
    assert run(jobs.run_month(ctx(db, keyring), NOVEMBER))["cleared"] == 1
    assert balances(db, h.id)["payout"] == fund + account - deposit - 6_00  # the platform's figure, not the 100.00 more declared


def test_the_bank_failing_then_succeeding_pays_once(db, keyring, month, bank):
    pw, fund, account, _ = month
    h = pw.w.hospital
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=h.id, account_no=BAD_ACCOUNT, account_name="人民医院", actor="test"))
    app = apply(db, h, fund=fund, account=account)["clr_appy_evt_id"]
    db.run(lambda c: applications.approve(c, db.clock(), app_id=app, actor="operator:a"))
    before = balances(db, h.id)
    failed = run(payments.pay(ctx(db, keyring), app, actor="test"))
    assert (failed.state, failed.error, failed.instruction_no) == ("failed", "INVALID_PAYEE_ACCOUNT", f"{app}P1")
    assert balances(db, h.id) == before  # nothing moved
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=h.id, account_no=GOOD_ACCOUNT, account_name="人民医院", actor="test"))
    run(bank.knobs(settle_delay_ms=60_000))  # accepted now, confirmed a minute later
    waiting = run(payments.pay(ctx(db, keyring), app, actor="test"))
    assert (waiting.state, waiting.instruction_no) == ("awaiting_confirmation", f"{app}P2") and balances(db, h.id) == before
    assert run(payments.pay(ctx(db, keyring), app, actor="test")).state == "awaiting_confirmation"  # asked, not sent again
    run(move_bank_clock(bank, 1))
    done = run(payments.pay(ctx(db, keyring), app, actor="test"))
    assert (done.state, done.instruction_no) == ("cleared", f"{app}P2")
    books = bank.runtime.books.payouts
    assert (books[f"{app}P1"].status, books[f"{app}P2"].status, f"{app}P3" in books) == ("FAILED", "CONFIRMED", False)
    assert balances(db, h.id)["payout"] - before["payout"] == books[f"{app}P2"].amount_fen


def test_a_payment_returned_by_the_bank_is_a_failed_instruction_and_moves_nothing(db, keyring, month, bank):
    from tests.support.benefits import close_account, luhn_account

    pw, fund, account, _ = month
    h = pw.w.hospital
    closed = luhn_account(77)
    close_account(bank.url, closed)  # the hospital's account was closed at the bank: accepted, then returned
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=h.id, account_no=closed, account_name="人民医院", actor="test"))
    app = apply(db, h, fund=fund, account=account)["clr_appy_evt_id"]
    db.run(lambda c: applications.approve(c, db.clock(), app_id=app, actor="operator:a"))
    before = balances(db, h.id)
    returned = run(payments.pay(ctx(db, keyring), app, actor="test"))
    assert (returned.state, returned.error) == ("failed", "ACCOUNT_CLOSED") and balances(db, h.id) == before
    assert bank.runtime.books.payouts[f"{app}P1"].status == "RETURNED"


def test_an_instruction_whose_answer_was_lost_is_asked_about_not_sent_again(db, keyring, month, bank):
    pw, fund, account, _ = month
    h = pw.w.hospital
    app = apply(db, h, fund=fund, account=account)["clr_appy_evt_id"]
    db.run(lambda c: applications.approve(c, db.clock(), app_id=app, actor="operator:a"))
    # The first run recorded its instruction and the bank booked it, but the answer never came back (a crash, a timeout).
    state, row, ins = db.run(lambda c: payments._prepare(c, db.clock(), app, None, "test"))
    assert state == "open" and ins.status == "sending"
    run(bank.channel.payout(ins.id, payee_account=ins.payee_account, payee_name=ins.payee_name, amount_fen=int(ins.amount), purpose="lost"))
    calls = bank.runtime.books.calls
    done = run(payments.pay(ctx(db, keyring), app, actor="test"))
    assert (done.state, done.instruction_no) == ("cleared", ins.id)
    assert bank.runtime.books.calls - calls == 1  # one query, no second POST
    rows = db.run(lambda c: c.execute(select(clearing_payments).where(clearing_payments.c.application_id == app)).all(), write=False)
    assert [(r.id, r.status) for r in rows] == [(ins.id, "confirmed")]


def test_the_month_rules():
    m = rules.parse_month("2026-11", "--month")
    assert (m.setlym, m.declare_by, m.first_day, m.last_day) == ("202611", date(2026, 12, 10), date(2026, 11, 1), date(2026, 11, 30))
    assert m.pay_by == date(2027, 1, 7)  # 20 weekdays after Thursday 10 December
    assert rules.payable(fund=10_001, account=500, recoveries=0, rules=rules.ClearingRules()).deposit == 500  # 5 % of 100.01, half up
    with pytest.raises(Conflict):
        rules.payable(fund=1_000, account=0, recoveries=2_000, rules=rules.ClearingRules())
    assert rules.Month(2026, 12).end - rules.Month(2026, 12).start == timedelta(days=31)


def test_a_hospitals_outpatient_and_inpatient_months_are_cleared_apart_and_together_net_to_zero(db, keyring, clock, bank):
    from tests.support.world import seed
    from yibao.services.care import visits

    w = seed(db, keyring)
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)
    h = w.hospital
    settle(db, h, open_with_lines(db, h, w.employee.id).id, "MSG-O1")
    stay = open_with_lines(db, h, w.retiree.id, kind="inpatient")
    db.run(lambda c: visits.discharge(c, db.clock(), institution=h, visit_id=stay.id))
    settle(db, h, stay.id, "MSG-I1", use=False)
    rows = {r.msgid: r for r in db.run(lambda c: c.execute(select(S)).all(), write=False)}
    clock.now = clock.now.replace(month=12, day=3)
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=h.id, account_no=GOOD_ACCOUNT, account_name="人民医院", actor="test"))
    for clr_type, msgid in (("11", "MSG-O1"), ("21", "MSG-I1")):
        r = rows[msgid]
        apply(db, h, fund=int(r.fund_total), account=int(r.account_pay), psntime=1, clr_type=clr_type)
    report = run(jobs.run_month(ctx(db, keyring), NOVEMBER))
    assert (report["cleared"], report["awaiting_review"]) == (2, [])  # each declared its own kind's figures exactly
    after = balances(db, h.id)
    assert after["receivable"] == 0
    deposits = sum(apply_ratio(int(r.fund_total), 50_000) for r in rows.values())
    assert (after["deposit"], after["payout"]) == (deposits, sum(int(r.fund_total) + int(r.account_pay) for r in rows.values()) - deposits)


def test_the_job_refuses_a_month_still_running_and_an_unknown_region_before_reading_anything(db, keyring, clock):
    """The service checks what the CLI says (the new-user trial found `clearing run --month 2027-03` and `--region 999999`
    accepted, exiting 0 with nothing done)."""
    clock.now = clock.now.replace(year=2026, month=11, day=20)
    with pytest.raises(Conflict) as running:
        run(jobs.run_month(ctx(db, keyring), NOVEMBER))
    assert running.value.code == "month_not_ended"
    clock.now = clock.now.replace(month=12, day=2)
    with pytest.raises(InputError) as unknown:
        run(jobs.run_month(ctx(db, keyring), NOVEMBER, region="999999"))
    assert (unknown.value.field, unknown.value.code) == ("region", "unknown_region")
    assert run(jobs.run_month(ctx(db, keyring), NOVEMBER, region="440300"))["applications"] == 0
