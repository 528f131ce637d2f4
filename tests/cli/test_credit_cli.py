"""`yibao credit reminders|overdue` run the daily jobs, with a progress bar on stderr: in this process (tests/support/cli.py),
and as a real process where its exit statuses are the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.support import cli
from tests.support.credit import credit_world, run
from tests.support.db import Clock
from yibao.crypto.pii import Keyring
from yibao.services.credit import lines as credit
from yibao.services.credit import reservations as credit_reservations
from yibao.store.db import Database
from yibao.store.tables import credit_bills, credit_reminders

KEY = bytes(range(32))


def yibao(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli.yibao(*args, env={**os.environ, "YIBAO_SECRET_KEY": KEY.hex(), "NO_COLOR": "1", **(env or {})})


def yibao_process(*args: str) -> subprocess.CompletedProcess:
    """The same as a real `yibao` process: the entry point, its exit statuses."""
    exe = Path(sys.executable).with_name("yibao")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "YIBAO_SECRET_KEY": KEY.hex(), "NO_COLOR": "1"})


def test_reminders_job_from_the_command_line_runs_once_per_bill_and_kind(tmp_path, bank, sms_gateway, sms_sandbox):
    url = f"sqlite:///{tmp_path}/credit.db"
    db = Database(url, clock=Clock())
    db.create_all()
    cw = credit_world(db, Keyring(KEY), db.clock, bank)
    cw.enrol()
    r = run(credit_reservations.reserve(cw.ctx, order_ref="ORDCLI" + os.urandom(6).hex().upper(), holder_id=cw.holder,
                           institution_id=cw.world.hospital.id, amount=25_00, actor="test"))
    done = run(credit_reservations.capture(cw.ctx, r.order_ref, actor="test"))
    today = credit.beijing_day(db.clock())
    # the CLI runs on the real clock: make this bill due in three days from now
    db.run(lambda c: c.execute(update(credit_bills).where(credit_bills.c.bill_no == done.bill_no).values(due_date=today + timedelta(days=3))))
    db.dispose()

    # Set-up changed with issue 11 (point 2): the texts go out through an SMS gateway — the sandbox one on loopback.
    gateway = {"YIBAO_SMS_URL": sms_sandbox.url, "YIBAO_SMS_KEY": sms_sandbox.key}
    # What a person reads (no --json): the counts, the outstanding yuan, what was done; no progress bar off a terminal.
    first = yibao("credit", "reminders", "--database", url, env=gateway)
    assert first.returncode == 0, first.stderr
    assert f"还款提醒 credit reminders {today.isoformat()}: 未还账单 unpaid bills 1, 新提醒 reminders recorded 1 (待还 outstanding ¥25.00), " \
           "短信已发 texts sent 1" in first.stdout
    [row] = [ln for ln in first.stdout.splitlines() if "到期前3天 due in 3 day(s)" in ln]
    assert [c.strip() for c in row.split("│")[1:-1]] == ["到期前3天 due in 3 day(s)", "1", "25.00"]
    assert "{" not in first.stdout and first.stderr == ""
    second = yibao("credit", "reminders", "--database", url, "--json", env=gateway)
    assert json.loads(second.stdout) == {"day": today.isoformat(), "bills": 1, "sent": 0, "by_kind": {}, "amounts": {}, "texted": 0}
    db = Database(url)
    rows = db.run(lambda c: c.execute(select(credit_reminders)).all(), write=False)
    assert [(x.bill_no, x.kind) for x in rows] == [(done.bill_no, "d-3")] and rows[0].sms_id is not None
    db.dispose()


def test_overdue_job_refuses_a_malformed_bank_option(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    assert yibao("db", "upgrade", "--database", url).returncode == 0
    bad = yibao_process("credit", "overdue", "--database", url, "--bank", "bank-440300")
    assert bad.returncode == 2 and "ID=URL" in bad.stderr
    ok = yibao_process("credit", "overdue", "--database", url, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["checked"] == 0 and json.loads(ok.stdout)["past_due"] == "0.00"
    said = yibao("credit", "overdue", "--database", url)
    assert said.returncode == 0 and "检查 lines checked 0, 暂停 suspended 0, 正常 active 0, 银行未应答 bank unreachable 0" in said.stdout
    assert "逾期未还 past due on these lines ¥0.00" in said.stdout


def test_reminders_without_a_gateway_wait_for_the_next_run(tmp_path, bank, sms_gateway, sms_sandbox):
    """No SMS gateway configured: the reminder is recorded, its text waits (said in the report), and the next run
    with a gateway sends it — once."""
    url = f"sqlite:///{tmp_path}/credit.db"
    db = Database(url, clock=Clock())
    db.create_all()
    cw = credit_world(db, Keyring(KEY), db.clock, bank)
    cw.enrol()
    r = run(credit_reservations.reserve(cw.ctx, order_ref="ORDCLI" + os.urandom(6).hex().upper(), holder_id=cw.holder,
                           institution_id=cw.world.hospital.id, amount=25_00, actor="test"))
    done = run(credit_reservations.capture(cw.ctx, r.order_ref, actor="test"))
    today = credit.beijing_day(db.clock())
    db.run(lambda c: c.execute(update(credit_bills).where(credit_bills.c.bill_no == done.bill_no).values(due_date=today + timedelta(days=3))))
    db.dispose()
    none = {"YIBAO_SMS_URL": "", "YIBAO_SMS_KEY": ""}
    first = yibao("credit", "reminders", "--database", url, "--json", env=none)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"day": today.isoformat(), "bills": 1, "sent": 1, "by_kind": {"d-3": 1}, "amounts": {"d-3": "25.00"},
                                        "texted": 0, "unsent": 1, "sms_problem": "sms_gateway_not_configured"}
    assert sms_sandbox.state.sent_to(cw.world.phones["employee"]) == []
    gateway = {"YIBAO_SMS_URL": sms_sandbox.url, "YIBAO_SMS_KEY": sms_sandbox.key}
    for _ in range(2):
        again = yibao("credit", "reminders", "--database", url, "--json", env=gateway)
        assert json.loads(again.stdout) == {"day": today.isoformat(), "bills": 1, "sent": 0, "by_kind": {}, "amounts": {},
                                            "texted": 1 if _ == 0 else 0}
    [text] = [m["text"] for m in sms_sandbox.state.sent_to(cw.world.phones["employee"])]
    assert done.bill_no in text and "25.00" in text
