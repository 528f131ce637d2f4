"""The provincial mode: input and output SM4-encrypted under the institution's key, `cainfo` an SM3withSM2 signature of
the plaintext — the institution's on the way in, the platform's on the way out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support import fsi
from yibao.crypto import gm
from yibao.formats import fsi as wire
from yibao.fsi.keys import platform_key

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


@pytest.fixture
def institution_key():
    return gm.Sm2PrivateKey.generate()


@pytest.fixture
def sealed(client, world, db, keyring, clock, institution_key):
    fsi.issue(db, keyring, world.other_hospital.id, token="other-fsi-token-0123456", sm4_key=SM4_KEY,
              sm2_public=institution_key.public_key().to_hex())
    h = fsi.his(client, world.other_hospital, clock, token="other-fsi-token-0123456", sm4_key=SM4_KEY, sm2_private=institution_key)
    h.sign_in()
    return h


def test_an_encrypted_visit_is_settled_and_answered_sealed(sealed, world, keyring, clock):
    vid = sealed.ok("2201", {"data": {"psn_no": world.resident.id}})["data"]["mdtrt_id"]
    sealed.ok("2204", {"feedetail": [{**line, "mdtrt_id": vid} for line in fsi.FEEDETAIL]})
    settled = sealed.ok("2207", {"data": {"mdtrt_id": vid, "medfee_sumamt": Decimal("325.00"), "acct_used_flag": "0"}})["setlinfo"]
    assert settled["medfee_sumamt"] == Decimal("325.00") and settled["insutype"] == "390"
    # On the wire the output is ciphertext, signed by the platform's key.
    at = clock()
    env = wire.envelope(sealed.sender, "5203", {"data": {"setl_id": settled["setl_id"]}}, at, msgid=sealed.msgid(), sign_no=sealed.sign_no)
    r = sealed.client.post(fsi.PATH, content=wire.dumps(env).encode(), headers=wire.gateway_headers(sealed.sender.fixmedins_code,
                                                                                                    sealed.sender.token, at))
    answer = wire.loads(r.content)
    assert set(answer["output"]) == {"encData"} and answer["signtype"] == "SM2"
    opened = wire.open_output(sealed.sender, answer, platform_key(keyring).public_key())
    assert opened["output"]["setlinfo"] == settled


def test_plain_input_a_wrong_signature_or_key_is_refused(sealed, world, clock, institution_key):
    payload = {"data": {"psn_no": world.resident.id}}
    plain = wire.envelope(wire.Sender(sealed.sender.fixmedins_code, sealed.sender.token, mdtrtarea_admvs="440300"), "2201", payload,
                          clock(), msgid=sealed.msgid(), sign_no=sealed.sign_no)
    sealed.refused("2201", payload, "input", "encData", envelope=plain)
    env = wire.envelope(sealed.sender, "2201", payload, clock(), msgid=sealed.msgid(), sign_no=sealed.sign_no)
    forged = {**env, "cainfo": gm.sm2_sign(gm.Sm2PrivateKey.generate(), wire.canonical(payload).encode()).hex()}
    # A forged signature, a malformed one and a wrong key are one refusal: the padding check tells nothing apart.
    wrong_key = {**env, "msgid": sealed.msgid(), "input": {"encData": gm.sm4_encrypt(bytes(16), b"{}").hex()}}
    said = {sealed.refused("2201", payload, "input", "SM4", "cainfo", envelope=broken)
            for broken in (forged, {**env, "msgid": sealed.msgid(), "cainfo": "zz"}, wrong_key)}
    assert len(said) == 1
