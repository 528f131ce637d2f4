"""A payment institution's verified notifications are applied once — and only a notification that was applied
uses up its event's key (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.payments import payment_world
from yibao.channels.base import Notification
from yibao.domain import payment_order as po
from yibao.services.books import audit
from yibao.services.payments import notifications
from yibao.services.payments import orders as payments
from yibao.store.tables import channel_notifications


def _notified(pw, order, amount_fen: int) -> str:  # noqa: ANN001
    n = Notification(channel="wxpay", kind="payment", event_id=f"EV{amount_fen}", status="succeeded", out_trade_no=order.id,
                     trade_no="WX4200001", amount_fen=amount_fen)
    now = pw.db.clock()
    return pw.db.run(lambda c: notifications.apply(c, now, pi_id=pw.pi_id, region="440300", notification=n, actor=f"channel:{pw.pi_id}"))


def test_a_wrong_amount_is_an_anomaly_and_the_right_notification_after_it_completes_the_order(db, keyring, wxpay):
    """The wrong one claimed the event's key before it was found wrong: the right one was then dropped as a duplicate
    and the order waited for recovery's query."""
    pw = payment_world(db, keyring, wxpay, balance=20000)
    pw.pay(key="warm-up")  # signs the holder's agreement before any knob is turned
    # The cash is in doubt: the trade stays processing for minutes (not 30 ms, which a loaded machine outlasts before its
    # first query), and no notification comes by itself.
    wxpay.runtime.set_knobs(settle_delay_ms=600_000, notify_delays_ms=[60_000])
    order = pw.pay(key="in-doubt")
    assert order.status == po.CASH_UNKNOWN and order.cash_pay > 0

    assert _notified(pw, order, order.cash_pay + 1) == "anomaly"
    assert _notified(pw, order, order.cash_pay + 1) == "duplicate"  # the same wrong one again: recorded once
    assert db.run(lambda c: payments.require(c, order.id), write=False).status == po.CASH_UNKNOWN
    assert _notified(pw, order, order.cash_pay) == po.COMPLETED
    assert _notified(pw, order, order.cash_pay) == notifications.ALREADY_RECORDED  # nothing to act on, nothing claimed
    assert db.run(lambda c: payments.require(c, order.id), write=False).status == po.COMPLETED

    effects = db.run(lambda c: sorted(c.execute(select(channel_notifications.c.effect).where(
        channel_notifications.c.out_trade_no == order.id)).scalars().all()), write=False)
    assert effects == ["anomaly", po.COMPLETED]
    anomalies = [e for e in db.run(lambda c: audit.entries(c, "440300", 200), write=False)
                 if e.subject == order.id and e.action == "payment.anomaly"]
    assert len(anomalies) == 1 and '"amount_mismatch"' in anomalies[0].detail
    assert all(r.ok for r in db.run(audit.verify, write=False))


def test_a_notification_is_verified_under_the_configuration_in_force_when_it_is_applied(db, keyring):
    """`receive` verifies with the connector this process built before (no read of the configuration); after the
    institution's secret is replaced, a notification signed with the old one is refused and one signed with the new
    one is accepted — the cached connector neither lets the old key in nor keeps the new one out."""
    import asyncio
    import json
    import time

    from yibao.channels.bank import transformers as bank_wire
    from yibao.services import Context
    from yibao.services.agency import connectors, payment_institutions

    pi_id, old, new = "bank-rotates", b"o" * 32, b"n" * 32
    now = db.clock()

    def admit(c) -> None:  # noqa: ANN001
        payment_institutions.admit(c, now, pi_id=pi_id, region="440300", name="轮换银行", kind="bank", admission_ref="test", actor="test")
    db.run(admit)

    def configure(secret: bytes) -> None:
        db.run(lambda c: connectors.configure(c, keyring, now, pi_id=pi_id, connector="bank", base_url="http://127.0.0.1:9",
                                              merchant_id="H440300-ROT", shared_secret=secret, actor="test"))

    ctx = Context.for_database(db, keyring)

    def receive(secret: bytes, event_id: str) -> int:
        body = json.dumps({"event": "payment.succeeded", "event_id": event_id,
                           "data": {"out_trade_no": f"PO{event_id}", "status": "PAID", "amount": "1.00"}}).encode()
        ts, nonce = str(int(time.time())), f"n{event_id}"
        headers = {"X-Bank-Merchant": "H440300-ROT", "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce,
                   "X-Bank-Signature": bank_wire.notify_signature(secret, ts, nonce, body)}
        return asyncio.run(notifications.receive(ctx, pi_id, headers, body)).status_code

    configure(old)
    assert receive(old, "E1") == 200  # read, built, verified, applied
    assert ctx.connectors.last_built(pi_id) is not None
    assert receive(new, "E2") == 401  # not the institution's secret
    configure(new)  # the connector built for the old secret is still cached
    assert receive(old, "E3") == 401, "the old secret verified by the cached connector must not be applied"
    assert receive(new, "E4") == 200
    assert receive(new, "E5") == 200  # from the connector built for the new secret
    assert receive(old, "E6") == 401
    claimed = db.run(lambda c: sorted(c.execute(select(channel_notifications.c.out_trade_no).where(
        channel_notifications.c.payment_institution_id == pi_id)).scalars().all()), write=False)
    assert claimed == ["POE1", "POE4", "POE5"]

    # The lag from the bank's paid time to our record of its notification (/metrics: yibao_notification_lag_seconds).
    from datetime import timedelta

    from yibao.observe.metrics import NOTIFICATION_LAG

    def lag() -> tuple[float, float]:
        sample = {s.name.rsplit("_", 1)[-1]: s.value for m in NOTIFICATION_LAG.collect() for s in m.samples
                  if s.labels.get("institution") == pi_id and s.name.endswith(("_count", "_sum"))}
        return sample.get("count", 0.0), sample.get("sum", 0.0)

    count, total = lag()
    paid_at = (db.clock() - timedelta(seconds=90)).isoformat()
    body = json.dumps({"event": "payment.succeeded", "event_id": "E7",
                       "data": {"out_trade_no": "POE7", "status": "PAID", "amount": "1.00", "paid_at": paid_at}}).encode()
    ts = str(int(time.time()))
    headers = {"X-Bank-Merchant": "H440300-ROT", "X-Bank-Timestamp": ts, "X-Bank-Nonce": "nE7",
               "X-Bank-Signature": bank_wire.notify_signature(new, ts, "nE7", body)}
    assert asyncio.run(notifications.receive(ctx, pi_id, headers, body)).status_code == 200
    count_after, total_after = lag()
    assert count_after == count + 1 and 90 <= total_after - total < 120
    assert asyncio.run(notifications.receive(ctx, pi_id, headers | {"X-Bank-Nonce": "nE7b", "X-Bank-Signature": bank_wire.notify_signature(
        new, ts, "nE7b", body)}, body)).status_code == 200
    assert lag()[0] == count + 1  # a resend is a duplicate: recorded once, measured once
