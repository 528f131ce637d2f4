"""Refunds of completed payments over HTTP (SQLite and PostgreSQL) against a SANDBOX institution on loopback: all,
cash only, insurance only; after each the ledger sums to zero and every balance and the year's accumulators are
exactly as the refund promises; an answer lost (the connection cut) leaves the refund unknown until a query resolves it; never twice."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import his, key
from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.payments import LINES, payment_world
from yibao.app import create_app
from yibao.domain.errors import NotFound
from yibao.services import Context
from yibao.services.books import accumulators
from yibao.services.payments import history, recovery, refunds


@pytest.fixture
def pw(db, keyring, wxpay):
    # The connector waits as every test's does (tests/support/channels.py): room for a loaded machine.
    return payment_world(db, keyring, wxpay, limit=50000, balance=20000, timeout_ms=int(CLIENT_TIMEOUT_S * 1000))


@pytest.fixture
def client(db, keyring):
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as c:
        yield c


def _books(pw) -> dict:  # noqa: ANN001
    acc = pw.db.run(lambda c: accumulators.read(c, pw.w.employee.id, pw.db.clock().year), write=False)
    return {**pw.balances(), "accumulators": acc}


def _pay(client, pw) -> dict:  # noqa: ANN001
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                    headers={**his(pw), **key()})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    return r.json()


def _refund(client, pw, payment_id: str, scope: str, k: str | None = None):  # noqa: ANN001, ANN202
    return client.post(f"/api/v1/his/payments/{payment_id}/refunds", json={"scope": scope},
                       headers={**his(pw), "Idempotency-Key": k or uuid.uuid4().hex})


def _sandbox_refunded(wxpay, payment_id: str) -> int:  # noqa: ANN001
    return wxpay.runtime.books.trades[payment_id].refunded_fen


def test_a_full_refund_restores_every_balance_and_the_accumulators_exactly(client, pw, wxpay):
    before = _books(pw)
    doc = _pay(client, pw)
    paid = _books(pw)
    assert paid["holder"] == before["holder"] - 200_00 and paid["accumulators"] != before["accumulators"]
    k = uuid.uuid4().hex
    r = _refund(client, pw, doc["payment_id"], "all", k)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["scope"], out["insurance"], out["cash"], out["payment"]["status"]) == (
        "succeeded", "all", "209.00", "166.00", "refunded")
    assert out["refund_no"] and out["out_refund_no"] == out["refund_id"]
    assert _books(pw) == before  # holder account, fund pool, hospital receivable and cash, accumulators; the ledger balances
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00
    again = _refund(client, pw, doc["payment_id"], "all", k)
    assert again.json() == out and again.headers["Idempotent-Replayed"] == "true"
    twice = _refund(client, pw, doc["payment_id"], "all")
    assert twice.status_code == 409 and (twice.json()["error"]["field"], twice.json()["error"]["code"]) == ("scope", "already_refunded")
    assert _books(pw) == before and _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00
    s = client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(pw)).json()
    assert s["status"] == "cancelled"
    listed = client.get(f"/api/v1/his/payments/{doc['payment_id']}/refunds", headers=his(pw)).json()["items"]
    assert [x["refund_id"] for x in listed] == [out["refund_id"]]


def test_cash_then_insurance_each_gives_back_exactly_its_part(client, pw, wxpay, clock):
    before = _books(pw)
    doc = _pay(client, pw)
    paid = _books(pw)
    cash = _refund(client, pw, doc["payment_id"], "cash")
    assert cash.status_code == 200, cash.text
    assert (cash.json()["insurance"], cash.json()["cash"], cash.json()["payment"]["status"]) == ("0.00", "166.00", "partially_refunded")
    after_cash = _books(pw)
    assert after_cash["hospital_cash"] == before["hospital_cash"]
    assert {k: after_cash[k] for k in ("holder", "pool", "receivable", "accumulators")} == {
        k: paid[k] for k in ("holder", "pool", "receivable", "accumulators")}
    # the settlement is partly refunded: a HIS cancel of it would reverse the cash twice, so it is refused
    cancel = client.post(f"/api/v1/his/settlements/{doc['setl_id']}/cancel", headers={**his(pw), **key()})
    assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "settlement_partially_refunded"
    again = _refund(client, pw, doc["payment_id"], "cash")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_refunded"
    clock.advance(minutes=1)
    ins = _refund(client, pw, doc["payment_id"], "insurance")
    assert ins.status_code == 200, ins.text
    assert (ins.json()["insurance"], ins.json()["cash"], ins.json()["payment"]["status"]) == ("209.00", "0.00", "refunded")
    assert _books(pw) == before
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00

    # The holder's 支付记录 (payments/history.py) explains every fen: the split adds up, each refund names its parts.
    rec = pw.db.run(lambda c: history.record(c, pw.w.employee.id, doc["setl_id"]), write=False)
    assert (rec.method, rec.status, rec.institution_name, rec.payment_id) == ("onecode", "refunded", pw.w.hospital.name, doc["payment_id"])
    assert rec.explained and rec.total == 375_00 and (rec.fund_total + rec.account, rec.cash) == (209_00, 166_00) and rec.fund_total > 0
    assert [(f.scope, f.status, f.fund, f.account, f.cash) for f in rec.refunds] == [
        ("cash", "succeeded", 0, 0, 166_00), ("insurance", "succeeded", rec.fund_total, rec.account, 0)]
    assert (rec.refunded, rec.net) == (375_00, 0)
    assert [r.setl_id for r in pw.db.run(lambda c: history.for_holder(c, pw.w.employee.id), write=False)] == [doc["setl_id"]]
    with pytest.raises(NotFound):  # someone else's record: as one that does not exist
        pw.db.run(lambda c: history.record(c, pw.w.retiree.id, doc["setl_id"]), write=False)


def test_insurance_only_gives_back_fund_account_and_accumulators_and_keeps_the_cash(client, pw, wxpay):
    before = _books(pw)
    doc = _pay(client, pw)
    paid = _books(pw)
    r = _refund(client, pw, doc["payment_id"], "insurance")
    assert r.status_code == 200 and r.json()["payment"]["status"] == "partially_refunded", r.text
    now = _books(pw)
    assert (now["holder"], now["pool"], now["accumulators"]) == (before["holder"], before["pool"], before["accumulators"])
    assert now["hospital_cash"] == paid["hospital_cash"] and now["receivable"] == before["receivable"]
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 0
    rest = _refund(client, pw, doc["payment_id"], "all")
    assert rest.status_code == 200 and (rest.json()["insurance"], rest.json()["cash"]) == ("0.00", "166.00")
    assert _books(pw) == before


def test_a_lost_refund_answer_is_unknown_until_the_query_resolves_it_and_never_refunds_twice(client, pw, wxpay, db, keyring, clock):
    before = _books(pw)
    doc = _pay(client, pw)
    paid = _books(pw)
    wxpay.runtime.set_knobs(cut_answer_rate=1.0, drop_notification_rate=1.0)
    k = uuid.uuid4().hex
    r = _refund(client, pw, doc["payment_id"], "all", k)
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["in_progress"], r.json()["payment"]["status"]) == ("unknown", True, "refunding")
    assert _books(pw) == paid  # nothing given back on our books while the cash answer is unknown
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00  # the institution did refund (then its answer was cut off)
    busy = _refund(client, pw, doc["payment_id"], "cash")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "refund_in_progress"
    wxpay.runtime.set_knobs(cut_answer_rate=0.0)
    resolved = _refund(client, pw, doc["payment_id"], "all", k)  # the retry asks (query_refund) instead of refunding again
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["payment"]["status"]) == ("succeeded", "refunded")
    assert _books(pw) == before and _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00


def test_recovery_resolves_an_unknown_refund(client, pw, wxpay, db, keyring, clock):
    before = _books(pw)
    doc = _pay(client, pw)
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    r = _refund(client, pw, doc["payment_id"], "all")
    assert r.status_code == 202 and r.json()["status"] == "unknown", r.text
    wxpay.runtime.set_knobs(server_error_rate=0.0)
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(Context.for_database(db, keyring)))
    assert report.refunds == {r.json()["refund_id"]: "succeeded"}
    assert _books(pw) == before and _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00


def test_a_refused_refund_query_leaves_the_refund_unknown_never_failed(client, pw, wxpay, db, keyring, clock):
    """The institution refuses the question (a rate limit, no permission: a signed 4xx about the query): it says nothing
    of the refund, which it may well have made — recorded failed, the payment would be refundable again (a second refund)."""
    from yibao.channels.base import declined
    from yibao.services.agency.connectors import Connectors

    doc = _pay(client, pw)
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    r = _refund(client, pw, doc["payment_id"], "all")
    assert r.status_code == 202 and r.json()["status"] == "unknown", r.text
    wxpay.runtime.set_knobs(server_error_rate=0.0)

    class RefusesQueries:
        name = "wxpay"

        async def query_refund(self, out_trade_no, out_refund_no, **_):  # noqa: ANN001, ANN003, ANN202
            raise declined("wxpay", "RATELIMIT_EXCEEDED", "频率超限")

    clock.advance(minutes=2)
    refused = Context.for_database(db, keyring, Connectors(keyring, overrides={pw.pi_id: RefusesQueries()}))
    assert asyncio.run(recovery.recover(refused)).refunds == {r.json()["refund_id"]: "unknown"}
    again = _refund(client, pw, doc["payment_id"], "cash")
    assert again.status_code == 409 and again.json()["error"]["code"] == "refund_in_progress"  # not refundable again
    clock.advance(minutes=2)
    assert asyncio.run(recovery.recover(Context.for_database(db, keyring))).refunds == {r.json()["refund_id"]: "succeeded"}
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00


def test_a_declined_refund_leaves_the_payment_completed_and_nothing_given_back(client, pw, wxpay):
    doc = _pay(client, pw)
    paid = _books(pw)
    wxpay.runtime.set_knobs(error_rate=1.0)
    r = _refund(client, pw, doc["payment_id"], "all")
    assert r.status_code == 200 and (r.json()["status"], r.json()["payment"]["status"]) == ("failed", "completed"), r.text
    assert _books(pw) == paid
    wxpay.runtime.set_knobs(error_rate=0.0)
    assert _refund(client, pw, doc["payment_id"], "all").json()["payment"]["status"] == "refunded"


def test_only_a_completed_payment_of_the_hospitals_own_is_refunded(client, pw):
    doc = _pay(client, pw)
    other = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all"},
                        headers={"Authorization": f"Bearer {pw.w.other_credential}", **key()})
    assert other.status_code == 404 and other.json()["error"]["field"] == "payment_id"
    bad = _refund(client, pw, doc["payment_id"], "some")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "scope"


def test_refunding_some_items_cancels_the_whole_settlement_and_settles_the_kept_lines_again(client, pw, wxpay):
    before = _books(pw)
    doc = _pay(client, pw)
    bad = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["9"]},
                      headers={**his(pw), **key()})
    assert bad.status_code == 422 and (bad.json()["error"]["field"], bad.json()["error"]["code"]) == ("lines_to_keep", "unknown_line")
    everything = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["1", "2", "3"]},
                             headers={**his(pw), **key()})
    assert everything.status_code == 422 and everything.json()["error"]["code"] == "lines_to_keep_invalid"
    r = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["1"]},
                    headers={**his(pw), **key()})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["scope"], out["payment"]["status"], out["lines_to_keep"]) == ("succeeded", "lines", "refunded", ["1"])
    rest = out["rebill"]
    assert rest["status"] == "completed" and rest["payment_id"] != doc["payment_id"] and rest["mdtrt_id"] == doc["mdtrt_id"]
    assert rest["total"] == "300.00"  # only the kept line (诊查费 300.00) is paid now
    after = _books(pw)
    paid_now = int(round(float(rest["account"]["amount"]) * 100))
    assert after["holder"] == before["holder"] - paid_now
    assert after["hospital_cash"] - before["hospital_cash"] == int(round(float(rest["cash"]["amount"]) * 100))
    assert after["receivable"] - before["receivable"] == int(round((float(rest["fund"]["total"]) + float(rest["account"]["amount"])) * 100))
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00
    visit = client.get(f"/api/v1/his/visits/{doc['mdtrt_id']}", headers=his(pw)).json()
    assert [ln["feedetl_sn"] for ln in visit["lines"] if ln["status"] == "active"] == ["1"]


def test_items_are_refunded_from_a_payment_the_account_paid_in_full(client, db, keyring, wxpay):
    """No cash share (the account paid all the personal share): nothing to give back in cash is not "already
    given back" — refunding some items must work here as well (it was refused already_partly_refunded)."""
    rich = payment_world(db, keyring, wxpay, limit=50000, balance=10_000_00, timeout_ms=int(CLIENT_TIMEOUT_S * 1000))
    doc = _pay(client, rich)
    assert doc["cash"]["amount"] == "0.00" and doc["account"]["amount"] != "0.00", doc
    before = rich.balances()
    r = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["1"]},
                    headers={**his(rich), **key()})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["scope"], out["payment"]["status"]) == ("succeeded", "lines", "refunded")
    rest = out["rebill"]
    assert rest["status"] == "completed" and rest["total"] == "300.00" and rest["cash"]["amount"] == "0.00"
    given_back = int(doc["account"]["amount"].replace(".", "")) - int(rest["account"]["amount"].replace(".", ""))
    assert rich.balances()["holder"] - before["holder"] == given_back  # the refunded items' account share, to the fen
    again = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["1"]},
                        headers={**his(rich), **key()})
    assert again.status_code == 409  # the original is refunded: nothing more by items


def test_a_refund_reason_is_audited_and_an_unknown_one_refused_before_anything_moves(client, pw, wxpay, db):
    from sqlalchemy import select

    from yibao.domain.errors import InputError
    from yibao.store.tables import audit_log

    doc = _pay(client, pw)
    paid = _books(pw)

    def refund(reason: str):  # noqa: ANN202 — the pages' call (web/cashier_payments.py): the same flow as the API's
        return asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=doc["payment_id"], request_key=uuid.uuid4().hex,
                                               request_hash="h", scope="insurance", actor="test", reason=reason))

    with pytest.raises(InputError) as refused:
        refund("because")
    assert refused.value.code == "invalid_reason" and _books(pw) == paid
    done = refund("duplicate_charge")
    assert done.status == "succeeded"
    details = db.run(lambda c: c.execute(select(audit_log.c.detail).where(audit_log.c.action == "refund.reason",
                                                                          audit_log.c.subject == done.id)).scalars().all(), write=False)
    assert len(details) == 1 and "duplicate_charge" in str(details[0])


# ---- refunds of some items: one refund, each leg its difference (h17c) ---------------------------------------------

def _fen(yuan: str) -> int:
    whole, _, frac = yuan.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2]) if not whole.startswith("-") else -_fen(yuan[1:])


def _items(client, pw, payment_id: str, items: list[str], k: str | None = None):  # noqa: ANN001, ANN202
    return client.post(f"/api/v1/his/payments/{payment_id}/refunds", json={"scope": "items", "items": items},
                       headers={**his(pw), "Idempotency-Key": k or uuid.uuid4().hex})


def _split(doc: dict) -> dict[str, int]:
    return {"fund": _fen(doc["fund"]["total"]), "account": _fen(doc["account"]), "cash": _fen(doc["cash"])}


def test_refunding_some_items_is_one_refund_of_each_legs_difference_and_the_rest_is_what_those_items_settle_to(client, pw, wxpay):
    before = _books(pw)
    doc = _pay(client, pw)
    paid = _books(pw)
    preview = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds/preview", json={"items": ["3"]}, headers=his(pw))
    assert preview.status_code == 200, preview.text
    legs = _split(preview.json()["legs"])
    assert _fen(preview.json()["legs"]["total"]) == 50_00 and legs["cash"] > 0  # 保健品 50.00: every fen of it, some in cash
    assert _books(pw) == paid  # a preview writes nothing
    k = uuid.uuid4().hex
    r = _items(client, pw, doc["payment_id"], ["3"], k)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["scope"], out["items"], out["rebill"], out["payment"]["status"]) == (
        "succeeded", "items", ["3"], None, "partially_refunded")
    assert _split(out["legs"]) == legs and (_fen(out["insurance"]), _fen(out["cash"])) == (legs["fund"] + legs["account"], legs["cash"])
    pl = out["payment_legs"]
    for leg in ("fund", "account", "cash", "total"):  # paid = refunded + remaining, each leg, to the fen
        get = (lambda part: _fen(pl[part][leg]["total"])) if leg == "fund" else (lambda part: _fen(pl[part][leg]))  # noqa: B023
        assert get("paid") == get("refunded") + get("remaining"), leg
    assert _split(pl["refunded"]) == legs and _split(pl["remaining"]) == _split(preview.json()["remaining"])
    assert _sandbox_refunded(wxpay, doc["payment_id"]) == legs["cash"]  # the institution refunded the cash leg only
    now = _books(pw)
    assert now["holder"] - paid["holder"] == legs["account"] and paid["hospital_cash"] - now["hospital_cash"] == legs["cash"]
    assert paid["receivable"] - now["receivable"] == legs["fund"] + legs["account"]
    again = _items(client, pw, doc["payment_id"], ["3"], k)
    assert again.json() == out and again.headers["Idempotent-Replayed"] == "true" and _books(pw) == now
    gone = _items(client, pw, doc["payment_id"], ["3"])
    assert gone.status_code == 422 and (gone.json()["error"]["field"], gone.json()["error"]["code"]) == ("items", "unknown_line")
    rest = _items(client, pw, doc["payment_id"], ["1", "2"])  # the last items: everything left, the payment refunded in full
    assert rest.status_code == 200 and rest.json()["payment"]["status"] == "refunded", rest.text
    assert _split(rest.json()["legs"]) == _split(pl["remaining"])
    assert _books(pw) == before and _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00
    assert client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(pw)).json()["status"] == "cancelled"
    # the remaining settlement was exactly what those items settle to: paid alone, from the same books, the same split
    alone = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES[:2], "account": {"use": True}},
                        headers={**his(pw), **key()}).json()
    assert _split({"fund": alone["fund"], "account": alone["account"]["amount"], "cash": alone["cash"]["amount"]}) == _split(pl["remaining"])


def test_items_then_the_rest_by_scope_all_gives_back_exactly_what_is_left(client, pw, wxpay):
    before = _books(pw)
    doc = _pay(client, pw)
    first = _items(client, pw, doc["payment_id"], ["2"])
    assert first.status_code == 200 and first.json()["payment"]["status"] == "partially_refunded", first.text
    old = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "lines_to_keep": ["1"]},
                      headers={**his(pw), **key()})
    assert old.status_code == 409 and old.json()["error"]["code"] == "already_partly_refunded"
    rest = _refund(client, pw, doc["payment_id"], "all")
    assert rest.status_code == 200 and rest.json()["payment"]["status"] == "refunded", rest.text
    assert _fen(rest.json()["cash"]) + _fen(first.json()["cash"]) == 166_00
    assert _books(pw) == before and _sandbox_refunded(wxpay, doc["payment_id"]) == 166_00
    bad = _items(client, pw, doc["payment_id"], ["1"])
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "already_refunded"


def test_a_declined_items_refund_moves_nothing_and_can_be_asked_again(client, pw, wxpay):
    doc = _pay(client, pw)
    paid = _books(pw)
    wxpay.runtime.set_knobs(error_rate=1.0)
    r = _items(client, pw, doc["payment_id"], ["3"])
    assert r.status_code == 200 and (r.json()["status"], r.json()["payment"]["status"]) == ("failed", "completed"), r.text
    assert _books(pw) == paid and _fen(r.json()["payment_legs"]["refunded"]["total"]) == 0
    wxpay.runtime.set_knobs(error_rate=0.0)
    ok = _items(client, pw, doc["payment_id"], ["3"])
    assert ok.status_code == 200 and ok.json()["status"] == "succeeded", ok.text
    bad = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all", "items": ["1"]},
                      headers={**his(pw), **key()})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "items"


# ---- the holder's 支付记录 of refunds of items (h17h) -----------------------------------------------------------------

LAYER_KEYS = ("pool", "serious_illness", "large_amount", "other", "assistance")


def _legs_fen(doc: dict) -> dict[str, int]:
    """A leg view the API answers (refunds.leg_view) as fen by leg: each fund layer, the account, the cash."""
    return {**{k: _fen(doc["fund"][k]) for k in LAYER_KEYS}, "account": _fen(doc["account"]), "cash": _fen(doc["cash"])}


def _line_fen(f: history.RefundLine) -> dict[str, int]:
    return {**f.layers, "account": f.account, "cash": f.cash}


def test_the_holders_record_of_items_refunded_in_turn_then_the_rest_adds_up_to_the_fen_against_the_refunds_legs(client, pw, wxpay, clock):
    doc = _pay(client, pw)

    def rec() -> history.Record:
        return pw.db.run(lambda c: history.record(c, pw.w.employee.id, doc["setl_id"]), write=False)

    paid = rec()
    assert paid.explained and paid.given == dict.fromkeys(history.LEGS, 0) and paid.remaining["total"] == paid.total == 375_00
    answers = []
    for items in (["3"], ["2"]):
        clock.advance(minutes=1)  # the record lists refunds in the order they were made
        r = _items(client, pw, doc["payment_id"], items)
        assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
        answers.append(r.json())
        now = rec()
        assert (now.status, now.partly_refunded) == ("partially_refunded", True)
        # each refund of items as the refunds API answered it: its legs (fund by layer, account, cash) and its items, named
        assert [(f.scope, f.status, _line_fen(f), f.items, f.insurance_other) for f in now.refunds] == [
            ("items", "succeeded", _legs_fen(a["legs"]), [(sn, next(x["name"] for x in LINES if x["feedetl_sn"] == sn)) for sn in a["items"]], 0)
            for a in answers]
        assert all(f.fund == sum(f.layers.values()) and f.total == _fen(a["legs"]["total"]) for f, a in zip(now.refunds, answers, strict=True))
        # what remains of each leg is the payment's remaining legs (the ledger's), and paid = given back + remaining, each leg
        pl = answers[-1]["payment_legs"]
        left = now.remaining
        assert {k: left[k] for k in history.LEGS} == _legs_fen(pl["remaining"]) and now.given == _legs_fen(pl["refunded"])
        assert all(now.paid[k] == now.given[k] + left[k] for k in history.LEGS)
        assert (now.refunded, now.net, left["total"]) == (_fen(pl["refunded"]["total"]), now.total - now.refunded, now.net)
        assert left["fund"] == sum(left[k] for k in LAYER_KEYS) and now.refunded > 0 and now.net > 0
    before_rest = rec().remaining
    clock.advance(minutes=1)
    rest = _refund(client, pw, doc["payment_id"], "all")  # what is left, as whole parts
    assert rest.status_code == 200 and rest.json()["payment"]["status"] == "refunded", rest.text
    done = rec()
    last = done.refunds[-1]
    assert (last.scope, last.status, last.items, last.insurance_other) == ("all", "succeeded", [], 0)
    assert _line_fen(last) == {k: before_rest[k] for k in history.LEGS}  # every leg left, each by its layer
    assert (last.fund + last.account, last.cash) == (_fen(rest.json()["insurance"]), _fen(rest.json()["cash"]))
    assert (done.status, done.partly_refunded, done.refunded, done.net) == ("refunded", False, 375_00, 0)
    assert done.remaining == dict.fromkeys((*history.LEGS, "fund", "total"), 0)
    assert done.given == _legs_fen(rest.json()["payment_legs"]["refunded"]) == {k: done.paid[k] for k in history.LEGS}
