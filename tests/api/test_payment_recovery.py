"""Payment recovery runs in the background of a serving app, and as a command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from fastapi.testclient import TestClient

from tests.support import cli
from tests.support.payments import payment_world, wait_until
from yibao.app import create_app
from yibao.domain import payment_order as po
from yibao.domain.money import format_yuan
from yibao.services.payments import orders as payments


def test_recovery_runs_in_the_background_of_a_serving_app(db, keyring, wxpay, clock):
    pw = payment_world(db, keyring, wxpay, limit=0)
    waiting = pw.pay(key="bg")
    assert waiting.status == po.AWAITING_CONFIRMATION
    before_expiry = pw.balances()
    assert before_expiry["pending"] > 0
    with TestClient(create_app(db, keyring=keyring, recovery_interval=0.05)):
        clock.advance(minutes=11)
        wait_until(lambda: db.run(lambda c: payments.require(c, waiting.id), write=False).status == po.VOIDED,
                   what="background recovery voids the expired confirmation")
    assert db.run(lambda c: payments.require(c, waiting.id), write=False).void_reason == po.CONFIRMATION_EXPIRED
    assert pw.balances()["pending"] == 0


def test_yibao_payments_recover_finishes_what_a_stopped_process_left(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, limit=0)
    waiting = pw.pay(key="cli")  # its confirmation expires long before the real clock the command runs on
    yibao = os.path.join(os.path.dirname(sys.executable), "yibao")
    done = subprocess.run([yibao, "payments", "recover", "--database", db.url, "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "YIBAO_SECRET_KEY": bytes(range(32)).hex()})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["orders"] == {waiting.id: po.VOIDED} and report["voided"] == 1
    total = format_yuan(waiting.total)
    assert report["amounts"] == {waiting.id: total} and (report["voided_amount"], report["completed_amount"]) == (total, "0.00")
    assert pw.balances()["pending"] == 0
    # Run again for a person (no --json, in this process): a summary line saying nothing was left, no JSON, no bar off a terminal.
    again = cli.yibao("payments", "recover", "--database", db.url, env={**os.environ, "YIBAO_SECRET_KEY": bytes(range(32)).hex(),
                                                                         "NO_COLOR": "1"})
    assert again.returncode == 0, again.stderr
    assert "支付恢复 payment recovery: 完成 completed 0 (¥0.00), 撤销 voided 0 (¥0.00), 仍不明 still unknown 0" in again.stdout
    assert "没有中断的支付 nothing was left midway" in again.stdout and "{" not in again.stdout and again.stderr == ""


def test_recovery_summary_names_each_order_and_its_yuan(db, keyring, wxpay, clock):
    """The human summary of `yibao payments recover`, rendered from a real round's report: the order, what was done, its yuan."""
    import io

    from rich.console import Console

    from yibao.cli import _render_recovery
    from yibao.services.payments import recovery

    pw = payment_world(db, keyring, wxpay, limit=0)
    waiting = pw.pay(key="summary")
    clock.advance(minutes=11)
    seen = []
    report = asyncio.run(recovery.recover(pw.ctx(), progress=lambda done, total: seen.append((done, total))))
    assert seen and seen[-1][0] == seen[-1][1]  # the bar reaches its end
    out = io.StringIO()
    _render_recovery({**report.as_dict(), "orders": report.orders, "amounts": {k: format_yuan(v) for k, v in report.totals.items()},
                      "refunds": report.refunds, "error_details": report.errors}, Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    assert f"撤销 voided 1 (¥{format_yuan(waiting.total)})" in text
    [row] = [ln for ln in text.splitlines() if waiting.id in ln]
    assert [c.strip() for c in row.split("│")[1:-1]] == [waiting.id, "撤销 voided", format_yuan(waiting.total)]
