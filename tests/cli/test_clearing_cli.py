"""`yibao clearing run --month YYYY-MM` (in this process, tests/support/cli.py; its refusal as a real process): accepts and pays the month's applications through the SANDBOX bank,
then changes nothing on a second run; a malformed month is refused by name."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.cli.test_credit_cli import KEY, yibao, yibao_process
from tests.support.credit import connect
from tests.support.db import Clock
from tests.support.identity import admit
from tests.support.settlement import open_with_lines, settle
from tests.support.world import seed
from yibao.crypto.pii import Keyring
from yibao.domain.ledger import clearing_payout
from yibao.services.books import ledger
from yibao.services.clearing import applications
from yibao.store.db import Database
from yibao.store.tables import settlements as S


def test_the_month_is_cleared_by_the_job_once(tmp_path, bank):
    url = f"sqlite:///{tmp_path}/clearing.db"
    db = Database(url, clock=Clock())
    db.create_all()
    keyring = Keyring(KEY)
    w = seed(db, keyring)
    admit(db, "bank-440300", kind="bank")
    connect(db, keyring, "bank-440300", bank.channel)
    settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "MSG-CLI1")
    row = db.run(lambda c: c.execute(select(S)).one(), write=False)
    db.clock.now = db.clock.now.replace(month=12, day=2)
    db.run(lambda c: applications.set_payee(c, db.clock(), institution_id=w.hospital.id, account_no="6222020000123456782", account_name="人民医院",
                                            actor="test"))
    db.run(lambda c: applications.apply(c, db.clock(), institution=w.hospital, clr_type="11", clr_way="1", setlym="202611", psntime=1,
                                        medfee_sumamt=int(row.total), med_sumfee=0, fund_appy_sum=int(row.fund_total), cash_payamt=int(row.cash_pay),
                                        acct_pay=int(row.account_pay), begndate=db.clock().date().replace(month=11, day=1),
                                        enddate=db.clock().date().replace(month=11, day=30), actor="test"))
    db.dispose()

    first = yibao("clearing", "run", "--month", "2026-11", "--database", url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["applications"], report["cleared"], report["failed"], report["awaiting_review"]) == (1, 1, [], [])
    second = yibao("clearing", "run", "--month", "2026-11", "--database", url)
    assert second.returncode == 0, second.stderr
    assert "already cleared 1" in second.stdout and "cleared now 0" in second.stdout
    db = Database(url)
    paid = db.run(lambda c: ledger.balance(c, clearing_payout("440300")), write=False)
    assert f"{paid / 100:.2f}" == report["paid"] and paid == int(row.fund_total) + int(row.account_pay) - report_deposit(report)
    db.dispose()
    bad = yibao_process("clearing", "run", "--month", "2026-13", "--database", url)  # a real process's exit status
    assert bad.returncode == 2 and "--month" in bad.stderr


def report_deposit(report: dict) -> int:
    whole, _, fen = report["deposits"].partition(".")
    return int(whole) * 100 + int(fen)
