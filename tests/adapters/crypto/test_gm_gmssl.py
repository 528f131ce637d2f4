"""yibao.crypto.gm against an independent implementation: GmSSL 3.2 (Guan Zhi's C library, compiled into the
``gmssl-pyx`` dev dependency). Random keys, messages and user IDs, both directions: what we sign GmSSL verifies
(and refuses under another user ID), what GmSSL signs we verify; SM3 and the SM4 block agree.
"""

from __future__ import annotations

import gmssl_pyx
from hypothesis import given
from hypothesis import strategies as st

from yibao.crypto import gm
from yibao.crypto.gm import Sm2PrivateKey, signature_from_der, signature_to_der, sm2_sign, sm2_verify, sm3, sm4_encrypt

scalars = st.integers(1, gm.SM2_CURVE.n - 2)
uids = st.binary(min_size=1, max_size=40)  # GmSSL refuses an empty signer ID (we accept one: ENTL = 0)


def _raw_public(key: Sm2PrivateKey) -> bytes:
    return bytes.fromhex(key.public_key().to_hex()[2:])  # GmSSL takes x‖y, 64 bytes


@given(d=scalars, data=st.binary(max_size=300), uid=uids)
def test_gmssl_verifies_ours(d, data, uid):
    key = Sm2PrivateKey(d)
    signature = signature_to_der(sm2_sign(key, data, uid=uid))
    assert gmssl_pyx.sm2_verify(_raw_public(key), data, signature, uid)
    assert not gmssl_pyx.sm2_verify(_raw_public(key), data, signature, uid + b"x")


@given(d=scalars, data=st.binary(max_size=300), uid=uids)
def test_we_verify_gmssls(d, data, uid):
    key = Sm2PrivateKey(d)
    signature = signature_from_der(gmssl_pyx.sm2_sign(d.to_bytes(32, "big"), _raw_public(key), data, uid))
    assert sm2_verify(key.public_key(), data, signature, uid=uid)
    assert not sm2_verify(key.public_key(), data, signature, uid=uid + b"x")


@given(data=st.binary(max_size=500))
def test_sm3_agrees(data):
    assert sm3(data) == gmssl_pyx.sm3_hash(data)


@given(key=st.binary(min_size=16, max_size=16), block=st.binary(min_size=16, max_size=16))
def test_sm4_block_agrees(key, block):
    # GmSSL's wrapper offers CBC only: with a zero IV, CBC's first block is the plain block encryption, as ECB's is.
    assert sm4_encrypt(key, block)[:16] == gmssl_pyx.sm4_cbc_padding_encrypt(key, bytes(16), block)[:16]
