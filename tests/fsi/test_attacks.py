"""The gateway under attack and under fuzz, on SQLite and PostgreSQL: wrong types, deep nesting, NUL inside the
encrypted input — each a refusal naming its field, never an unexpected fault."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support import fsi
from yibao.crypto import gm
from yibao.formats import fsi as wire

SM4_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def no_fault(err_msg: str) -> str:
    assert "internal_error" not in err_msg, err_msg
    return err_msg


@pytest.mark.parametrize("cert_type", [[], ["03"], {}, {"a": "03"}])
def test_a_card_type_of_the_wrong_type_is_refused_by_name(hospital, cert_type):
    said = hospital.refused("1101", {"data": {"mdtrt_cert_type": cert_type, "mdtrt_cert_no": "D44030000011"}}, "mdtrt_cert_type")
    no_fault(said)


@pytest.mark.parametrize("serial", [[], ["1"], {}, {"a": "1"}])
def test_a_line_serial_of_the_wrong_type_is_refused_by_name(hospital, world, serial):
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    line = {**fsi.FEEDETAIL[0], "mdtrt_id": vid, "feedetl_sn": serial}
    no_fault(hospital.refused("2204", {"feedetail": [line]}, "input.feedetail[0].feedetl_sn"))


@pytest.mark.parametrize("depth", [400, 990, 5000])
def test_deeply_nested_json_is_refused_in_words(hospital, depth):
    env = wire.envelope(hospital.sender, "2203", {"mdtrtinfo": {"mdtrt_id": "nope"}, "diseinfo": "PLACE"}, hospital.clock(),
                        msgid=hospital.msgid(), sign_no=hospital.sign_no)
    body = wire.dumps(env).encode().replace(b'"PLACE"', b"[" * depth + b"]" * depth)
    no_fault(hospital.refused("2203", {}, "嵌套", body=body))


def test_nul_inside_the_encrypted_input_is_refused(client, world, db, keyring, clock):
    """The plain body's NUL is refused before parsing; the decrypted plaintext must be held to the same rule (PostgreSQL
    text cannot hold NUL: the statement would fail)."""
    key = gm.Sm2PrivateKey.generate()
    fsi.issue(db, keyring, world.other_hospital.id, token="other-fsi-token-0123456", sm4_key=SM4_KEY, sm2_public=key.public_key().to_hex())
    h = fsi.his(client, world.other_hospital, clock, token="other-fsi-token-0123456", sm4_key=SM4_KEY, sm2_private=key)
    no_fault(h.refused("9001", {"signIn": {"opter_no": "001", "mac": "00\u0000"}}, "input", "\\u0000"))
    h.sign_in()
    vid = h.ok("2201", {"data": {"psn_no": world.resident.id}})["data"]["mdtrt_id"]
    line = {**fsi.FEEDETAIL[0], "mdtrt_id": vid, "medins_list_name": "诊查\u0000费"}
    no_fault(h.refused("2204", {"feedetail": [line]}, "input", "\\u0000"))
    assert h.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})["result"][0]["pric"] == Decimal("300.00")


def test_an_admission_reversed_before_it_arrived_is_refused_when_it_arrives(client, hospital, world):
    """2601 of a 2401 that has not arrived (the HIS timed out): as for a settlement, the id is claimed as reversed, so the
    admission arriving late opens no stay the HIS has written off; asked again, the reversal says the same."""
    late = hospital.msgid()
    out = hospital.ok("2601", {"data": {"omsgid": late, "oinfno": "2401"}})["data"]
    assert out["status"] == "reversed_before_arrival" and out["mdtrt_id"] is None
    assert hospital.ok("2601", {"data": {"omsgid": late, "oinfno": "2401"}})["data"]["status"] == "reversed_before_arrival"
    no_fault(hospital.refused("2401", {"mdtrtinfo": {"psn_no": world.resident.id, "med_type": "21"}}, "msgid", msgid=late))
    itself = hospital.msgid()
    no_fault(hospital.refused("2601", {"data": {"omsgid": itself, "oinfno": "2401"}}, "omsgid", msgid=itself))
    # An admission that did arrive is undone as before.
    sent = hospital.msgid()
    stay = hospital.ok("2401", {"mdtrtinfo": {"psn_no": world.resident.id, "med_type": "21"}}, msgid=sent)["result"]["mdtrt_id"]
    assert hospital.ok("2601", {"data": {"omsgid": sent, "oinfno": "2401"}})["data"] == {
        "omsgid": sent, "oinfno": "2401", "mdtrt_id": stay, "status": "reversed"}


def test_a_body_beyond_the_limit_is_refused_unread(hospital):
    """The gateway reads no more than MAX_BODY (a signed HIS's batch of fee lines is far smaller): beyond it, a refusal in
    words — as a declared length or as a stream — rather than a body of any size held in memory."""
    from yibao.fsi.gateway import MAX_BODY

    env = wire.envelope(hospital.sender, "2203", {"mdtrtinfo": {"mdtrt_id": "nope"}, "diseinfo": "PLACE"}, hospital.clock(),
                        msgid=hospital.msgid(), sign_no=hospital.sign_no)
    big = wire.dumps(env).encode().replace(b'"PLACE"', b'"' + b"x" * MAX_BODY + b'"')
    no_fault(hospital.refused("2203", {}, "body", "过大", body=big))

    def streamed():
        yield big[: MAX_BODY // 2]
        yield big[MAX_BODY // 2:]
    no_fault(hospital.refused("2203", {}, "body", "过大", body=streamed()))


def identities_hold(setlinfo: dict, setldetail: list) -> None:
    """The national identities, to the fen, every amount a number with two decimals."""
    for key in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hifp_pay", "balc"):
        assert isinstance(setlinfo[key], Decimal) and setlinfo[key].as_tuple().exponent == -2, (key, setlinfo[key])
    assert setlinfo["medfee_sumamt"] == setlinfo["fund_pay_sumamt"] + setlinfo["psn_part_amt"]
    assert setlinfo["psn_part_amt"] == setlinfo["acct_pay"] + setlinfo["psn_cash_pay"]
    assert setlinfo["fund_pay_sumamt"] == sum((row["fund_payamt"] for row in setldetail), Decimal("0.00"))
    assert setlinfo["fund_pay_sumamt"] == sum(setlinfo[k] for k in ("hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "cvlserv_pay",
                                                                      "hifes_pay", "oth_pay"))


def test_the_amounts_keep_the_national_identities_with_the_account(hospital, world, db, keyring):
    from tests.support.identity import ecard, id_number_of, name_of
    from tests.support.world import credit
    from yibao.services.payments import paycodes

    credit(db, world.employee.id, 12345, "identities")
    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    for lines in (fsi.FEEDETAIL, [{**fsi.FEEDETAIL[1], "cnt": 3}]):  # the deductible, then beyond it
        code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=world.employee.id, actor="test")).code
        vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
        hospital.ok("2204", {"feedetail": [{**line, "mdtrt_id": vid} for line in lines]})
        out = hospital.ok("2207", {"data": {"mdtrt_id": vid, "acct_used_flag": "1", "mdtrt_cert_type": "01", "mdtrt_cert_no": code}})
        assert out["setlinfo"]["acct_pay"] > 0
        identities_hold(out["setlinfo"], out["setldetail"])
        again = hospital.ok("5203", {"data": {"setl_id": out["setlinfo"]["setl_id"]}})
        identities_hold(again["setlinfo"], again["setldetail"])


def test_another_hospital_cannot_reach_this_ones_visits_settlements_or_messages(client, hospital, world, db, keyring, clock):
    fsi.issue(db, keyring, world.other_hospital.id, token="other-fsi-token-0123456")
    other = fsi.his(client, world.other_hospital, clock, token="other-fsi-token-0123456")
    other.sign_in()
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    settled_by = hospital.msgid()
    setl = hospital.ok("2207", {"data": {"mdtrt_id": vid}}, msgid=settled_by)["setlinfo"]
    for infno, payload in (("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "feedetl_sn": "9", "mdtrt_id": vid}]}),
                           ("2206", {"data": {"mdtrt_id": vid}}), ("2207", {"data": {"mdtrt_id": vid}}),
                           ("2205", {"data": {"mdtrt_id": vid}}), ("2202", {"data": {"mdtrt_id": vid}}),
                           ("5204", {"data": {"mdtrt_id": vid}}), ("5206", {"data": {"psn_no": world.employee.id, "mdtrt_id": vid}}),
                           ("2208", {"data": {"setl_id": setl["setl_id"]}}), ("5203", {"data": {"setl_id": setl["setl_id"]}}),
                           ("5204", {"data": {"setl_id": setl["setl_id"]}})):
        no_fault(other.refused(infno, payload, "不存在"))
    # Another's msgid is not even a msgid of the other hospital; its own 2601 of it reverses nothing of this one's.
    no_fault(other.refused("2601", {"data": {"omsgid": settled_by, "oinfno": "2207"}}, "msgid", envelope={
        **wire.envelope(other.sender, "2601", {}, clock(), msgid=settled_by, sign_no=other.sign_no)}))
    other.ok("2601", {"data": {"omsgid": settled_by, "oinfno": "2207"}})
    assert hospital.ok("5203", {"data": {"setl_id": setl["setl_id"]}})["setlinfo"]["setl_stas"] == "1"


def test_the_account_is_not_debited_without_its_owner(hospital, world, db, keyring):
    """acct_used_flag 1 with nothing presented, or with someone else's payment code, is presence_required — and the
    other person's code is not used up by the attempt."""
    from tests.support.identity import ecard, id_number_of, name_of
    from tests.support.world import credit
    from yibao.services.payments import paycodes

    credit(db, world.employee.id, 50000, "owner")
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    for infno in ("2206", "2207"):
        no_fault(hospital.refused(infno, {"data": {"mdtrt_id": vid, "acct_used_flag": "1"}}, "presence_required"))
        no_fault(hospital.refused(infno, {"data": {"mdtrt_id": vid, "acct_used_flag": 1, "mdtrt_cert_type": "03",
                                                   "mdtrt_cert_no": "D44030000011"}}, "presence_required"))
    someone = world.retiree
    ecard(db, keyring, someone.id, name_of(2), id_number_of(2))
    theirs = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=someone.id, actor="test")).code
    no_fault(hospital.refused("2207", {"data": {"mdtrt_id": vid, "acct_used_flag": "1", "mdtrt_cert_type": "01",
                                                "mdtrt_cert_no": theirs}}, "presence_required"))
    # Nothing moved, and the code still pays its holder's own visit.
    assert hospital.ok("2207", {"data": {"mdtrt_id": vid, "acct_used_flag": "0"}})["setlinfo"]["acct_pay"] == Decimal("0.00")
    own = hospital.ok("2201", {"data": {"psn_no": someone.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": own}]})
    credit(db, someone.id, 50000, "someone")
    paid = hospital.ok("2207", {"data": {"mdtrt_id": own, "acct_used_flag": "1", "mdtrt_cert_type": "01", "mdtrt_cert_no": theirs}})
    assert paid["setlinfo"]["acct_pay"] > 0


def test_the_same_msgid_sent_at_once_settles_once(client, hospital, world, db):
    """Eight copies of one 2207 (one msgid, each signed with its own nonce, as a HIS retrying in a hurry) arrive together:
    one settlement, eight identical answers; and eight 2207 of one visit under different msgids: one settles."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from yibao.store.tables import settlements

    n = 8
    vid = hospital.ok("2201", {"data": {"psn_no": world.resident.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    start, msgid = threading.Barrier(n), hospital.msgid()

    def send(m):  # noqa: ANN001, ANN202
        start.wait()
        return hospital.raw("2207", {"data": {"mdtrt_id": vid}}, msgid=m)

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(send, [msgid] * n))
    assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
    assert len({a["output"]["setlinfo"]["setl_id"] for a in answers}) == 1
    count = select(func.count()).select_from(settlements).where(settlements.c.visit_id == vid)
    assert db.run(lambda c: c.execute(count).scalar(), write=False) == 1

    other = hospital.ok("2201", {"data": {"psn_no": world.resident.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": other}]})
    vid, start = other, threading.Barrier(n)
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(send, [hospital.msgid() for _ in range(n)]))
    assert sorted(a["infcode"] for a in answers) == [-1] * (n - 1) + [0], [a["err_msg"] for a in answers]
    assert all("visit_settled" in a["err_msg"] for a in answers if a["infcode"] == -1), [a["err_msg"] for a in answers]


LIMIT = 10  # services/access/credentials.py: PER_ADDRESS and PER_INSTITUTION, within 15 minutes


def test_wrong_signatures_cost_what_wrong_credentials_cost(client, hospital, world, db, keyring, clock, monkeypatch):
    """A wrong x-tif-signature (or a paasid with no token) is counted per address and per institution code like a wrong
    REST credential (access/credentials.py); too many lock them — the right signature too, so a lucky guess is not told
    apart — until the window has passed. (Unthrottled, a token could be guessed at the gateway's speed.)"""
    monkeypatch.setenv("YIBAO_TRUSTED_PROXIES", "testclient")

    def from_(address: str, his) -> dict[str, str]:  # noqa: ANN001
        return {"Content-Type": "application/json", "X-Forwarded-For": address,
                **wire.gateway_headers(his.sender.fixmedins_code, his.sender.token, clock())}

    ok = {"data": {"psn_no": world.employee.id}}
    guesser = fsi.his(client, world.hospital, clock, token="not-the-token-at-all-000")
    guesser.sign_no = hospital.sign_no
    for _ in range(LIMIT):
        no_fault(guesser.refused("2201", ok, "x-tif-signature", "[bad_signature]", headers=from_("203.0.113.9", guesser)))
    no_fault(guesser.refused("2201", ok, "credentials_locked", headers=from_("203.0.113.9", guesser)))
    no_fault(hospital.refused("2201", ok, "credentials_locked", headers=from_("203.0.113.9", hospital)))  # the right one too
    # The code is locked too (ten guesses at it): a new address with the right token is refused, the HIS's own known
    # address is not (it signed rightly there before), and once the window has passed all is as before.
    no_fault(hospital.refused("2201", ok, "credentials_locked", headers=from_("198.51.100.1", hospital)))
    assert hospital.raw("2201", ok, headers=from_("testclient", hospital))["infcode"] == 0
    clock.advance(minutes=15, seconds=1)
    for address in ("203.0.113.9", "198.51.100.1"):
        assert hospital.raw("2201", ok, headers=from_(address, hospital))["infcode"] == 0
    # A paasid with no gateway token is a guess as well.
    stranger = fsi.his(client, world.other_hospital, clock, token="whatever-token-00000000")
    for _ in range(LIMIT):
        no_fault(stranger.refused("9001", {"signIn": {"opter_no": "1"}}, "x-tif-paasid", headers=from_("192.0.2.7", stranger)))
    no_fault(stranger.refused("9001", {"signIn": {"opter_no": "1"}}, "credentials_locked", headers=from_("192.0.2.7", stranger)))


def test_an_unexpected_fault_is_answered_in_words_and_its_nonce_is_used_all_the_same(hospital, world, monkeypatch):
    """A fault nobody foresaw: infcode -1 with a reference, no traceback; and its headers are spent like any refused
    request's (replayed later — once the fault is fixed — they would otherwise run)."""
    from yibao.fsi import transactions

    def broken(call, conn):  # noqa: ANN001, ANN202
        raise RuntimeError("a bug")

    monkeypatch.setitem(transactions.HANDLERS, "2201", broken)
    ok = {"data": {"psn_no": world.employee.id}}
    headers = {"Content-Type": "application/json", **wire.gateway_headers(hospital.sender.fixmedins_code, hospital.sender.token,
                                                                           hospital.clock())}
    said = hospital.refused("2201", ok, "internal_error", headers=headers)
    assert "Traceback" not in said and "a bug" not in said
    monkeypatch.undo()
    hospital.refused("2201", ok, "x-tif-nonce", "nonce_reused", headers=headers)


def test_a_payment_code_given_to_1101_is_pointed_to_2206_not_counted_as_a_miss(hospital, world, db, keyring):
    """A HIS scanning the e-voucher (the dynamic payment code, 91…) may hand it to 1101 as national HIS code does; yibao's
    1101 looks up the e-card's number, and the code is presented with 2206/2207. Said so — not a look-up of nobody,
    counted towards the enumeration watch, with the code left unused."""
    from tests.support.identity import ecard, id_number_of, name_of
    from yibao.services.payments import paycodes

    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=world.employee.id, actor="test")).code
    said = hospital.refused("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": code}}, "mdtrt_cert_no", "2206")
    assert "not_found" not in said
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    hospital.ok("2204", {"feedetail": [{**fsi.FEEDETAIL[0], "mdtrt_id": vid}]})
    hospital.ok("2206", {"data": {"mdtrt_id": vid, "acct_used_flag": "1", "mdtrt_cert_type": "01", "mdtrt_cert_no": code}})


def test_a_revoked_token_and_a_switch_to_sm4_hold_once_the_cache_has_passed(client, hospital, world, db, keyring, clock, monkeypatch):
    """Within CREDENTIAL_CACHE_S (30 s, as the REST path's suspension) a serving process may still pass a revoked token or
    plain input; after it, neither passes (the cache's life set to nothing here, rather than waiting)."""
    from yibao.fsi import gateway
    from yibao.services.agency import gateway_credentials

    monkeypatch.setattr(gateway, "CREDENTIAL_CACHE_S", 0)
    client.app.state.fsi_gateway._cache.clear()  # what the hospital's sign-in left there, for 30 s
    ok = {"data": {"psn_no": world.employee.id}}
    assert hospital.raw("2201", ok)["infcode"] == 0
    db.run(lambda c: gateway_credentials.revoke(c, clock(), institution_id=world.hospital.id, actor="test"))
    no_fault(hospital.refused("2201", ok, "x-tif-paasid"))
    key = gm.Sm2PrivateKey.generate()
    fsi.issue(db, keyring, world.hospital.id, sm4_key=SM4_KEY, sm2_public=key.public_key().to_hex())  # the same token, now SM4
    no_fault(hospital.refused("2201", ok, "input", "encData"))  # plain input: no downgrade
    sealed = fsi.his(client, world.hospital, clock, sm4_key=SM4_KEY, sm2_private=key)
    sealed.sign_no, sealed.seq = hospital.sign_no, hospital.seq  # one HIS: its msgids go on
    answer = sealed.raw("2201", ok)
    assert answer["infcode"] == 0, answer["err_msg"]


def test_the_window_edges_leave_no_replay(hospital, world, clock):
    """A timestamp up to the window ahead is accepted; its nonce is kept until no timestamp it carries can be in the
    window any more — replayed at the far edge (599 s later, the stamp 299 s behind) it is still a replay."""
    from datetime import timedelta

    ok = {"data": {"psn_no": world.employee.id}}
    ahead = {"Content-Type": "application/json",
             **wire.gateway_headers(hospital.sender.fixmedins_code, hospital.sender.token, clock() + timedelta(seconds=300))}
    assert hospital.raw("2201", ok, headers=ahead)["infcode"] == 0
    too_far = wire.gateway_headers(hospital.sender.fixmedins_code, hospital.sender.token, clock() + timedelta(seconds=302))
    no_fault(hospital.refused("2201", ok, "x-tif-timestamp", headers={"Content-Type": "application/json", **too_far}))
    clock.advance(seconds=599)
    no_fault(hospital.refused("2201", ok, "x-tif-nonce", headers=ahead))
    clock.advance(seconds=2)
    no_fault(hospital.refused("2201", ok, "x-tif-timestamp", headers=ahead))


async def _asgi(app, headers: list[tuple[bytes, bytes]], body: bytes):  # noqa: ANN001, ANN202
    """One request straight through ASGI: a test client re-encodes header bytes, a hostile HIS need not."""
    sent, got = [], [False]

    async def receive():  # noqa: ANN202
        if got[0]:
            return {"type": "http.disconnect"}
        got[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg):  # noqa: ANN001, ANN202
        sent.append(msg)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": fsi.PATH, "raw_path": fsi.PATH.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), *headers], "client": ("10.9.9.9", 1234), "server": ("t", 80)}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(("header", "value", "code"), [
    (b"x-tif-timestamp", b"\xb2", "invalid_timestamp"),  # "²": a digit to str.isdigit, not to int()
    (b"x-tif-signature", b"\xe9" * 64, "bad_signature"),  # non-ASCII: compare_digest raised
    (b"x-tif-signature", b"g" * 64, "bad_signature"),
])
def test_hostile_header_bytes_are_refused_in_words_not_faults(hospital, clock, header, value, code):
    """A review finding: both raised inside the gateway (internal_error, a logged traceback, the bad signature never counted)."""
    at = clock()
    raw = [(k.encode(), value if k.encode() == header else v.encode()) for k, v in
           wire.gateway_headers(hospital.sender.fixmedins_code, hospital.sender.token, at).items()]
    env = wire.envelope(hospital.sender, "9001", {"signIn": {"opter_no": "001"}}, at, sign_no="")
    status, body = hospital.client.portal.call(_asgi, hospital.client.app, raw, wire.dumps(env).encode())
    answer = wire.loads(body)
    assert status == 200 and answer["infcode"] == -1 and f"[{code}]" in answer["err_msg"], answer["err_msg"]


def test_times_outside_1900_2100_are_refused_by_name(client, hospital, world):
    """A review finding: the year 1 (or 9999 with an offset) cannot be turned to UTC: REST answered 500, the envelope
    internal_error."""
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    line = {**fsi.FEEDETAIL[0], "mdtrt_id": vid, "fee_ocur_time": "0001-01-01 00:00:00"}
    no_fault(hospital.refused("2204", {"feedetail": [line]}, "input.feedetail[0].fee_ocur_time", "1900–2100"))
    no_fault(hospital.refused("1312", {"data": {"updt_time": "0001-01-01 00:00:00"}}, "updt_time", "1900–2100"))
    r = client.get("/api/v1/his/catalogue", params={"updated_since": "0001-01-01T00:00:00"},
                   headers={"Authorization": f"Bearer {world.hospital_credential}"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "updated_since", r.text
