"""Payment recovery runs in the background of a serving app, and as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fastapi.testclient import TestClient

from tests.support.payments import payment_world, wait_until
from yibao.app import create_app
from yibao.domain import payment_order as po
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
    done = subprocess.run([yibao, "payments", "recover", "--database", db.url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "YIBAO_SECRET_KEY": bytes(range(32)).hex()})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["orders"] == {waiting.id: po.VOIDED} and report["voided"] == 1
    assert pw.balances()["pending"] == 0
