"""Issue 14 part 3: the holder signs the password-free agreement on the institution's page (the sandbox's, over real
HTTP), before any payment; the platform records it active only from the institution's verified notification or its
answer to a query. Both databases; WeChat Pay, Alipay and UnionPay."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from tests.support.channels import play_holder
from tests.support.payments import payment_world, sign_agreement, wait_until
from yibao.channels.base import Notification, SigningStart
from yibao.domain import payment_order as po
from yibao.services.books import audit
from yibao.services.payments import agreements, notifications
from yibao.store.tables import channel_agreements as AG
from yibao.store.tables import channel_notifications as CN

NAMES = ("wxpay", "alipay", "unionpay")


@pytest.fixture(params=NAMES)
def live(request, channel_world):
    live = channel_world[request.param]
    live.reset()
    yield live
    live.reset()


def _start(pw, return_url: str | None = None) -> dict:  # noqa: ANN001
    return asyncio.run(agreements.start(pw.ctx(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, return_url=return_url, actor="test"))


def _page(started: dict) -> SigningStart:
    s = started["signing"]
    return SigningStart(started["out_agreement_no"], s["url"], s["method"], s["form"])


def _row(pw):  # noqa: ANN001, ANN202
    return pw.db.run(lambda c: c.execute(select(AG).where(AG.c.person_id == pw.w.employee.id, AG.c.payment_institution_id == pw.pi_id))
                     .first(), write=False)


def _deliveries(live, out_no: str) -> list:  # noqa: ANN001
    return [d for d in live.runtime.notifier.deliveries
            if d.event.kind == "agreement" and getattr(d.event.record, "out_agreement_no", None) == out_no]


def _notification_for(live, out_no: str) -> tuple[dict, bytes]:  # noqa: ANN001
    """The institution's raw notification about our agreement, as it reached the callback server (parsed by the
    connector only to find which one it is; the platform verifies it again below)."""
    def found():  # noqa: ANN202
        for headers, body in live.raw_notifications():
            try:
                n = live.channel.verify_notification(headers, body)
            except Exception:  # noqa: BLE001 — another's, or forged: not this one
                continue
            if n.kind == "agreement" and n.data.get("subject") == out_no:
                return headers, body
        return None
    return wait_until(found, what=f"the {live.name} notification of agreement {out_no}")


def test_the_holder_signs_on_the_page_and_the_platform_records_it_from_the_verified_notification_once(db, keyring, live):
    pw = payment_world(db, keyring, live, signed=False)
    started = _start(pw, return_url="https://app.example.com/bindings/done")
    assert started["status"] == "pending" and started["agreement_no"] is None
    assert _row(pw).status == "pending"
    # the institution's own page: the merchant and the limit, confirm → back to the app's return URL
    answer = asyncio.run(play_holder(_page(started)))
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("https://app.example.com/bindings/done?")
    assert f"out_agreement_no={started['out_agreement_no']}" in answer.headers["location"] and "result=signed" in answer.headers["location"]
    assert _row(pw).status == "pending"  # the redirect proves nothing: only the institution's signed word does

    headers, body = _notification_for(live, started["out_agreement_no"])
    ctx = pw.ctx()
    for _ in range(2):  # a resend is the same event: applied once
        ack = asyncio.run(notifications.receive(ctx, pw.pi_id, headers, body))
        assert ack == live.channel.ack(True)
    row = _row(pw)
    signed_there = live.runtime.books.agreements[started["out_agreement_no"]]
    assert (row.status, row.agreement_no) == ("active", signed_there.agreement_no)
    effects = db.run(lambda c: [r.effect for r in c.execute(select(CN.c.effect).where(CN.c.payment_institution_id == pw.pi_id))],
                     write=False)
    assert effects == ["agreement_active"]
    # now a password-free payment goes through, under that agreement
    order = pw.pay(key="after-signing")
    assert order.status == po.COMPLETED and live.runtime.books.trades[order.id].agreement_no == signed_there.agreement_no


def test_a_dropped_notification_is_made_good_by_the_query(db, keyring, live):
    pw = payment_world(db, keyring, live, signed=False)
    asyncio.run(live.knobs(drop_notification_rate=1.0))
    started = _start(pw)
    asyncio.run(play_holder(_page(started)))
    assert [d.state for d in _deliveries(live, started["out_agreement_no"])] == ["dropped"]
    state = asyncio.run(agreements.refresh(pw.ctx(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))
    assert (state["status"], state["agreement_no"]) == ("active", live.runtime.books.agreements[started["out_agreement_no"]].agreement_no)
    again = asyncio.run(agreements.refresh(pw.ctx(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))
    assert again == state  # idempotent


def test_a_declined_signing_leaves_the_agreement_pending_and_the_payment_refused(db, keyring, live):
    pw = payment_world(db, keyring, live, signed=False)
    started = _start(pw)
    answer = asyncio.run(play_holder(_page(started), "decline"))
    assert answer.status_code == 200 and 'data-result="declined"' in answer.text
    assert started["out_agreement_no"] not in live.runtime.books.agreements
    assert not _deliveries(live, started["out_agreement_no"])  # nothing to tell
    state = asyncio.run(agreements.refresh(pw.ctx(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))
    assert (state["status"], state["agreement_no"]) == ("pending", None)
    order = pw.pay(key="declined-holder")
    assert (order.status, order.void_reason) == (po.VOIDED, po.NO_CHANNEL) and order.id not in live.runtime.books.trades
    # the holder may start again and sign this time: the same agreement number
    assert sign_agreement(pw)["out_agreement_no"] == started["out_agreement_no"]


def test_a_forged_signing_notification_is_refused_and_changes_nothing(db, keyring, live):
    pw = payment_world(db, keyring, live, signed=False)
    asyncio.run(live.knobs(bad_notification_signature=True, notify_delays_ms=[60_000]))
    started = _start(pw)
    asyncio.run(play_holder(_page(started)))
    wait_until(lambda: live.raw_notifications(), what="the forged notification")
    for headers, body in live.raw_notifications():
        ack = asyncio.run(notifications.receive(pw.ctx(), pw.pi_id, headers, body))
        assert ack == live.channel.ack(False)
    assert (_row(pw).status, _row(pw).agreement_no) == ("pending", None)
    assert db.run(lambda c: c.execute(select(CN).where(CN.c.payment_institution_id == pw.pi_id)).first(), write=False) is None


def test_each_wechat_deduction_is_preceded_by_its_deduction_notice(db, keyring, wxpay):
    from tests.adapters.channels.test_institutions import Recorder
    from yibao.services.agency import connectors as channel_registry

    pw = payment_world(db, keyring, wxpay)
    recorder = Recorder()
    order = pw.pay(key="booked", ctx=pw.ctx(channel_registry.Connectors(keyring, transport=recorder)))
    assert order.status == po.COMPLETED
    contract_id = _row(pw).agreement_no
    paths = [url.path for url, _ in recorder.bodies]
    notice, apply = paths.index(f"/v3/papay/contracts/{contract_id}/notify"), paths.index("/v3/papay/pay/transactions/apply")
    assert notice < apply
    assert b'"estimated_amount":{"amount":%d,' % order.cash_pay in recorder.bodies[notice][1]


def test_an_institutions_notification_naming_another_institutions_agreement_is_refused(db, keyring):
    """WeChat's verified word about an agreement number that is Alipay's (a misrouted or replayed notification) activates
    or terminates nothing: `activate` and `terminated` read and write only the notifying institution's row."""
    from sqlalchemy import insert

    from tests.support.identity import admit
    from tests.support.world import seed

    w = seed(db, keyring)
    for pi in ("wxpay-440300", "alipay-440300"):
        admit(db, pi)
    now = db.clock()
    with db.engine.begin() as conn:
        for pi, no, status, agreement_no in (("wxpay-440300", "AGWXPAY00001", "pending", None), ("alipay-440300", "AGALIPAY0001", "pending", None),
                                             ("alipay-440300", "AGALIPAY0002", "active", "ALI-2")):
            person = w.employee.id if no != "AGALIPAY0002" else w.retiree.id
            conn.execute(insert(AG).values(person_id=person, payment_institution_id=pi, region="440300", out_agreement_no=no,
                                           agreement_no=agreement_no, limit_fen=5_000_000, status=status, signing_started_at=now,
                                           updated_at=now, created_at=now))

    def told(pi_id: str, status: str, out_no: str) -> str:
        n = Notification("wxpay", "agreement", f"E-{status}-{out_no}", status, data={"subject": out_no, "agreement_no": "WX-FORGED"})
        return db.run(lambda c: agreements.apply_notification(c, db.clock(), pi_id, n, "channel:wxpay-440300"))

    def rows() -> dict:
        return {r.out_agreement_no: (r.status, r.agreement_no)
                for r in db.run(lambda c: c.execute(select(AG)).all(), write=False)}

    before = rows()
    assert told("wxpay-440300", "active", "AGALIPAY0001") == "unknown_agreement"
    assert told("wxpay-440300", "terminated", "AGALIPAY0002") == "unknown_agreement"
    assert rows() == before
    assert told("wxpay-440300", "active", "AGWXPAY00001") == "agreement_active"  # its own agreement: applied
    assert rows() == {**before, "AGWXPAY00001": ("active", "WX-FORGED")}


def _unbind(pw) -> dict:  # noqa: ANN001 — as the patient API and the page do: the unit, then the institution told
    items = pw.db.run(lambda c: agreements.unbind(c, pw.db.clock(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))
    assert pw.pi_id not in [b["payment_institution_id"] for b in items]  # unbound here whatever the institution says
    return asyncio.run(agreements.terminate(pw.ctx(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))


def test_unbinding_terminates_the_agreement_at_the_institution_and_signing_again_is_a_new_generation(db, keyring, live):
    """The institution records the termination and refuses deductions under the agreement; the holder who binds again
    and signs again gets the next generation's number — the terminated one's would be refused (the institution keeps it
    terminated) — and pays under the new agreement."""
    from uuid import uuid4

    from tests.support.identity import bind
    from yibao.channels.base import Declined, PaymentRequest

    pw = payment_world(db, keyring, live)
    signed = _row(pw)
    state = _unbind(pw)
    assert (state["status"], state["out_agreement_no"]) == ("terminated", signed.out_agreement_no)
    assert live.runtime.books.agreements[signed.out_agreement_no].status == "terminated"  # the sandbox recorded it
    with pytest.raises(Declined):  # a deduction under it now: refused by the institution itself
        asyncio.run(live.channel.pay(PaymentRequest(f"T{uuid4().hex[:20]}", 100, "免密扣款", signed.agreement_no)))
    actions = [e.action for e in db.run(lambda c: audit.entries(c, "440300", 50), write=False) if e.subject == pw.w.employee.id]
    assert "channel.agreement.terminating" in actions and "channel.agreement.terminated" in actions

    bind(db, pw.w.employee.id, pw.pi_id, password_free_limit=100000, make_default=True)
    again = sign_agreement(pw)
    assert again["out_agreement_no"] != signed.out_agreement_no and _row(pw).generation == 2
    assert [a.status for a in (live.runtime.books.agreements[signed.out_agreement_no], live.runtime.books.agreements[again["out_agreement_no"]])] \
        == ["terminated", "active"]
    order = pw.pay(key="signed-again")
    assert order.status == po.COMPLETED and live.runtime.books.trades[order.id].agreement_no == again["agreement_no"]


def test_an_unreachable_institution_leaves_the_agreement_terminating_until_recovery_terminates_it(db, keyring, wxpay, clock):
    from yibao.services.payments import recovery

    pw = payment_world(db, keyring, wxpay)
    signed = _row(pw)
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    assert _unbind(pw)["status"] == "terminating"  # visible: not yet ended at WeChat
    assert wxpay.runtime.books.agreements[signed.out_agreement_no].status == "active"
    from yibao.services.payments import cash

    assert db.run(lambda c: cash.agreement_for(c, keyring, pw.w.employee.id, pw.pi_id), write=False).agreement_no is None  # no payment uses it
    late = Notification("wxpay", "agreement", "E-late", "active", data={"subject": signed.out_agreement_no, "agreement_no": "WX-LATE"})
    assert db.run(lambda c: agreements.apply_notification(c, db.clock(), pw.pi_id, late, "test")) == "agreement_ended"
    clock.advance(minutes=2)
    assert asyncio.run(recovery.recover(pw.ctx())).agreements == {signed.out_agreement_no: "terminating"}  # still down
    wxpay.runtime.set_knobs(server_error_rate=0.0)
    clock.advance(minutes=2)
    assert asyncio.run(recovery.recover(pw.ctx())).agreements == {signed.out_agreement_no: "terminated"}
    assert wxpay.runtime.books.agreements[signed.out_agreement_no].status == "terminated"
    assert _row(pw).status == "terminated" and asyncio.run(recovery.recover(pw.ctx())).agreements == {}
