"""SM3, SM4 and SM2 (yibao.crypto.gm) against the standards' own examples, and against malformed input.

Vectors and where they come from:
- SM3: GB/T 32905-2016 Appendix A, examples 1 ("abc") and 2 ("abcd" × 16).
- SM4: GB/T 32907-2016 Appendix A, example 1 (one block) and example 2 (the block encrypted 1,000,000 times).
- SM2, recommended curve: GM/T 0003.5-2012 / GB/T 32918.5-2017 Appendix A (signature example: ID
  "1234567812345678", message "message digest", known d and k → known Z, e, r, s).
- SM2, GB/T 32918.2-2016 Appendix A.2: the same algorithm on the standard's 256-bit TEST curve (not the
  recommended one), ID "ALICE123@YAHOO.COM" → known public key, Z, e, r, s. It exercises the arithmetic with an
  a ≠ -3 and a different prime, which the module's code never special-cases.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.crypto import gm
from yibao.crypto.gm import (
    DEFAULT_UID,
    GmError,
    Sm2PrivateKey,
    Sm2PublicKey,
    signature_from_der,
    signature_to_der,
    sm2_sign,
    sm2_verify,
    sm3,
    sm3_hex,
    sm4_decrypt,
    sm4_encrypt,
)

# --- SM3 (GB/T 32905-2016 Appendix A) --------------------------------------------------------------------------


def test_sm3_standard_examples():
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert sm3(b"abc") == bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_sm3_refuses_text():
    with pytest.raises(GmError) as refused:
        sm3("abc")  # type: ignore[arg-type]
    assert refused.value.code == "not_bytes"


# --- SM4 (GB/T 32907-2016 Appendix A) --------------------------------------------------------------------------

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_standard_block_through_the_module():
    # ECB: the first block of the ciphertext is the raw block encryption of the (block-sized) plaintext; the second
    # is the encryption of a full block of PKCS#7 padding.
    ciphertext = sm4_encrypt(SM4_KEY, SM4_KEY)
    assert len(ciphertext) == 32
    assert ciphertext[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    assert ciphertext[16:] == sm4_encrypt(SM4_KEY, b"")
    assert sm4_decrypt(SM4_KEY, ciphertext) == SM4_KEY


def test_sm4_standard_million_iterations():
    # Example 2: the plaintext encrypted 1,000,000 times with the same key. One encryptor of the module's own
    # cipher construction (ECB keeps no state between blocks); about a second.
    encryptor = gm._sm4_ecb(SM4_KEY).encryptor()
    block = SM4_KEY
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


@pytest.mark.parametrize("key", [b"", b"k" * 15, b"k" * 17, b"k" * 32])
def test_sm4_refuses_a_key_that_is_not_16_bytes(key):
    for call in (lambda: sm4_encrypt(key, b"x"), lambda: sm4_decrypt(key, bytes(16))):
        with pytest.raises(GmError) as refused:
            call()
        assert refused.value.code == "sm4_key_length"


def test_sm4_refuses_a_text_key():
    with pytest.raises(GmError) as refused:
        sm4_encrypt("0123456789abcdef", b"x")  # type: ignore[arg-type]
    assert refused.value.code == "not_bytes"


@pytest.mark.parametrize("length", [0, 1, 15, 17, 31, 33])
def test_sm4_refuses_a_ciphertext_that_is_not_whole_blocks(length):
    with pytest.raises(GmError) as refused:
        sm4_decrypt(SM4_KEY, bytes(length))
    assert refused.value.code == "sm4_length"


def test_sm4_wrong_key_is_refused_not_returned_as_garbage():
    ciphertext = sm4_encrypt(SM4_KEY, "医保结算 input".encode())
    wrong = bytes(16)
    # This (fixed) wrong key decrypts the last block to bytes whose padding is invalid — as it does 255 times
    # in 256 (the module's docstring says so; the envelope's signature covers the rest).
    with pytest.raises(GmError) as refused:
        sm4_decrypt(wrong, ciphertext)
    assert refused.value.code == "sm4_padding"
    assert "填充" in refused.value.message_zh and "padding" in refused.value.message_en


def test_sm4_damaged_padding_is_refused():
    encryptor = gm._sm4_ecb(SM4_KEY).encryptor()
    for last in (bytes(16), bytes(15) + b"\x11", bytes(14) + b"\x01\x02", b"\x03" * 15 + b"\x04"):
        with pytest.raises(GmError) as refused:
            sm4_decrypt(SM4_KEY, encryptor.update(last))
        assert refused.value.code == "sm4_padding"


@given(key=st.binary(min_size=16, max_size=16), plaintext=st.binary(max_size=200))
def test_sm4_round_trip(key, plaintext):
    ciphertext = sm4_encrypt(key, plaintext)
    assert len(ciphertext) % 16 == 0 and 1 <= len(ciphertext) - len(plaintext) <= 16
    assert sm4_decrypt(key, ciphertext) == plaintext


# --- SM2: the standards' examples --------------------------------------------------------------------------------

# GM/T 0003.5-2012 / GB/T 32918.5-2017 Appendix A: recommended curve, ID 1234567812345678.
REC_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
REC_PUBLIC = (
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
REC_Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
REC_E = 0xF0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640
REC_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
REC_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
MESSAGE = b"message digest"

# GB/T 32918.2-2016 Appendix A.2: the TEST curve over a 256-bit prime, ID ALICE123@YAHOO.COM.
TEST_CURVE = gm._Curve(
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
)
TEST_UID = b"ALICE123@YAHOO.COM"
TEST_D = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
TEST_PUBLIC = (
    0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
    0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
)
TEST_Z = "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
TEST_E = 0xB524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76
TEST_K = 0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F
TEST_R = 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
TEST_S = 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7


def test_sm2_recommended_curve_example_verifies():
    public = Sm2PublicKey.from_hex(REC_PUBLIC)
    assert sm2_verify(public, MESSAGE, REC_SIGNATURE)
    assert sm2_verify(public, MESSAGE, REC_SIGNATURE, uid=b"1234567812345678")


def test_sm2_recommended_curve_example_key_z_and_digest():
    private = Sm2PrivateKey.from_hex(REC_D)
    assert private.public_key() == Sm2PublicKey.from_hex(REC_PUBLIC)
    public = private.public_key()
    assert gm._z(gm.SM2_CURVE, DEFAULT_UID, public.x, public.y).hex() == REC_Z.lower()
    assert gm._digest(gm.SM2_CURVE, DEFAULT_UID, public.x, public.y, MESSAGE) == REC_E


def test_sm2_recommended_curve_example_signs_with_the_standards_k(monkeypatch):
    # The nonce comes from `secrets` (never `random`): standing in for it with the standard's k must give the
    # standard's (r, s) through the public API.
    drawn = []

    def randbelow(bound):
        drawn.append(bound)
        return REC_K - 1  # sm2 draws k = randbelow(n - 1) + 1

    monkeypatch.setattr(gm.secrets, "randbelow", randbelow)
    assert sm2_sign(Sm2PrivateKey.from_hex(REC_D), MESSAGE) == REC_SIGNATURE
    assert drawn == [gm.SM2_CURVE.n - 1]


def test_sm2_gbt_32918_2_test_curve_example():
    c = TEST_CURVE
    assert c.on_curve(c.gx, c.gy)
    assert gm._affine(c, gm._multiply_base(c, TEST_D)) == TEST_PUBLIC
    assert gm._affine(c, gm._multiply(c, TEST_D, c.gx, c.gy)) == TEST_PUBLIC  # the window method agrees
    assert gm._z(c, TEST_UID, *TEST_PUBLIC).hex() == TEST_Z.lower()
    assert gm._digest(c, TEST_UID, *TEST_PUBLIC, MESSAGE) == TEST_E
    assert gm._sign_digest(c, TEST_D, TEST_E, TEST_K) == (TEST_R, TEST_S)
    assert gm._verify_digest(c, *TEST_PUBLIC, TEST_E, TEST_R, TEST_S)
    assert not gm._verify_digest(c, *TEST_PUBLIC, TEST_E, TEST_R, TEST_S ^ 1)
    assert not gm._verify_digest(c, *TEST_PUBLIC, TEST_E ^ 1, TEST_R, TEST_S)
    # This curve's n is far below 2^256, so r + n and s + n still fit in 32 bytes: the same point, refused all the
    # same (without the range check, each signature would have a second valid form).
    assert TEST_R + c.n < 2**256 and TEST_S + c.n < 2**256
    assert not gm._verify_digest(c, *TEST_PUBLIC, TEST_E, TEST_R + c.n, TEST_S)
    assert not gm._verify_digest(c, *TEST_PUBLIC, TEST_E, TEST_R, TEST_S + c.n)


def test_sm2_scalar_multiplications_agree_with_repeated_addition():
    c = gm.SM2_CURVE
    g = (c.gx, c.gy, 1)
    acc = gm._INFINITY
    for k in range(1, 40):
        acc = gm._add(c, acc, g)
        expected = gm._affine(c, acc)
        assert gm._affine(c, gm._multiply_base(c, k)) == expected
        assert gm._affine(c, gm._multiply(c, k, c.gx, c.gy)) == expected
    assert gm._affine(c, gm._multiply_base(c, c.n)) is None  # n·G is the point at infinity
    assert gm._affine(c, gm._multiply(c, c.n, c.gx, c.gy)) is None
    x, y = gm._affine(c, gm._multiply_base(c, c.n - 1))
    assert (x, y) == (c.gx, c.p - c.gy)  # (n-1)·G = -G


def test_sm2_a_key_verifies_the_same_before_and_after_its_table():
    public = Sm2PublicKey.from_hex(REC_PUBLIC)
    answers = []
    for _ in range(gm._TABLE_AFTER + 2):
        answers.append((sm2_verify(public, MESSAGE, REC_SIGNATURE), sm2_verify(public, MESSAGE + b".", REC_SIGNATURE)))
    assert public._table is not None  # the later rounds used the key's own table
    assert answers == [(True, False)] * len(answers)
    c = gm.SM2_CURVE
    for k in (1, 2, 15, 16, 17, 2**128 + 5, c.n - 1):
        assert gm._affine(c, gm._multiply_comb(public._table, c, k)) == gm._affine(c, gm._multiply(c, k, public.x, public.y))


# --- SM2: round trips and refusals -------------------------------------------------------------------------------

KEY = Sm2PrivateKey.generate()
PUBLIC = KEY.public_key()


def test_sm2_round_trip_and_fresh_nonces():
    data = '{"infno":"2207","input":{}}'.encode()
    first, second = sm2_sign(KEY, data), sm2_sign(KEY, data)
    assert len(first) == 64 and first != second  # a new k every time
    assert sm2_verify(PUBLIC, data, first) and sm2_verify(PUBLIC, data, second)


def test_sm2_any_flipped_bit_fails():
    data = b"cainfo over the envelope"
    signature = sm2_sign(KEY, data)
    for bit in range(0, 512, 7):
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not sm2_verify(PUBLIC, data, bytes(flipped))
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not sm2_verify(PUBLIC, bytes(flipped), signature)


def test_sm2_wrong_uid_or_key_fails():
    signature = sm2_sign(KEY, b"data", uid=b"ALICE123@YAHOO.COM")
    assert sm2_verify(PUBLIC, b"data", signature, uid=b"ALICE123@YAHOO.COM")
    assert not sm2_verify(PUBLIC, b"data", signature)
    assert not sm2_verify(PUBLIC, b"data", signature, uid=b"")
    assert not sm2_verify(Sm2PrivateKey.generate().public_key(), b"data", signature, uid=b"ALICE123@YAHOO.COM")


def _rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_sm2_malformed_signatures_are_false_never_an_exception():
    n = gm.SM2_CURVE.n
    r = int.from_bytes(REC_SIGNATURE[:32], "big")
    public = Sm2PublicKey.from_hex(REC_PUBLIC)
    for signature in [
        b"",
        REC_SIGNATURE[:63],
        REC_SIGNATURE + b"\x00",
        signature_to_der(REC_SIGNATURE),  # DER where raw r‖s is expected
        bytes(64),
        _rs(0, 1),
        _rs(1, 0),
        _rs(n, 1),
        _rs(1, n),
        _rs(r, n - r),  # r + s = n: t = 0
        b"\xff" * 64,
        "F5A03B06" * 16,
        None,
        12345,
    ]:
        assert sm2_verify(public, MESSAGE, signature) is False  # type: ignore[arg-type]
    assert sm2_verify(public, "message digest", REC_SIGNATURE) is False  # type: ignore[arg-type]
    assert sm2_verify(public, MESSAGE, REC_SIGNATURE, uid=b"u" * 8192) is False
    assert sm2_verify(public, MESSAGE, REC_SIGNATURE, uid="1234567812345678") is False  # type: ignore[arg-type]


def test_sm2_verify_needs_a_public_key():
    with pytest.raises(GmError):
        sm2_verify(REC_PUBLIC, MESSAGE, REC_SIGNATURE)  # type: ignore[arg-type]


def test_sm2_sign_refuses_an_overlong_uid():
    with pytest.raises(GmError) as refused:
        sm2_sign(KEY, b"data", uid=b"u" * 8192)
    assert refused.value.code == "sm2_uid_length"
    assert sm2_verify(PUBLIC, b"data", sm2_sign(KEY, b"data", uid=b"u" * 8191), uid=b"u" * 8191)


def test_sm2_key_hex_forms():
    assert Sm2PrivateKey.from_hex(REC_D).to_hex() == REC_D.lower()
    assert Sm2PrivateKey.from_hex(f"  {REC_D.lower()}\n").to_hex() == REC_D.lower()
    public = Sm2PublicKey.from_hex(REC_PUBLIC)
    assert public.to_hex() == REC_PUBLIC.lower()
    assert Sm2PublicKey.from_hex(REC_PUBLIC[2:]) == public  # 128 digits, without 04
    assert Sm2PublicKey.from_hex(REC_PUBLIC.lower()) == public
    assert Sm2PublicKey.from_hex(PUBLIC.to_hex()) == PUBLIC
    assert Sm2PrivateKey.from_hex(KEY.to_hex()).public_key() == PUBLIC
    assert REC_D.lower() not in repr(Sm2PrivateKey.from_hex(REC_D))


@pytest.mark.parametrize(
    "text",
    [
        "",
        REC_PUBLIC[:-2],
        REC_PUBLIC + "00",
        "05" + REC_PUBLIC[2:],  # 130 digits without the uncompressed marker
        "02" + REC_PUBLIC[2:66],  # compressed: not accepted
        REC_PUBLIC[:-1] + "g",
        REC_PUBLIC[:60] + "  " + REC_PUBLIC[62:],
        REC_PUBLIC[:-2] + ("00" if REC_PUBLIC[-2:] != "00" else "01"),  # off the curve
        "04" + "00" * 64,  # (0, 0) is not on the curve
        "04" + "ff" * 64,  # coordinates above p
        "04" + gm.SM2_CURVE.p.to_bytes(32, "big").hex() + REC_PUBLIC[66:],  # x = p (x mod p would be 0)
    ],
)
def test_sm2_malformed_public_keys_are_refused(text):
    with pytest.raises(GmError) as refused:
        Sm2PublicKey.from_hex(text)
    assert refused.value.code == "sm2_public_key"


@pytest.mark.parametrize(
    "text",
    [
        "",
        REC_D[:-2],
        REC_D + "00",
        REC_D[:-1] + "x",
        REC_D[:30] + " " + REC_D[32:] + " ",  # 64 characters, 62 digits: not a shorter key
        REC_D[:30] + "  " + REC_D[32:],
        "00" * 32,
        (gm.SM2_CURVE.n - 1).to_bytes(32, "big").hex(),  # 1 + d would not be invertible
        gm.SM2_CURVE.n.to_bytes(32, "big").hex(),
        "ff" * 32,
    ],
)
def test_sm2_malformed_private_keys_are_refused(text):
    with pytest.raises(GmError) as refused:
        Sm2PrivateKey.from_hex(text)
    assert refused.value.code == "sm2_private_key"


def test_sm2_private_key_range_ends_are_usable():
    for d in (1, gm.SM2_CURVE.n - 2):
        key = Sm2PrivateKey(d)
        assert Sm2PrivateKey.from_hex(key.to_hex()).public_key() == key.public_key()
        assert sm2_verify(key.public_key(), b"edge", sm2_sign(key, b"edge"))


@given(data=st.binary(max_size=300), uid=st.binary(max_size=40), d=st.integers(1, gm.SM2_CURVE.n - 2))
def test_sm2_round_trip_any_key_data_and_uid(data, uid, d):
    key = Sm2PrivateKey(d)
    signature = sm2_sign(key, data, uid=uid)
    public = Sm2PublicKey.from_hex(key.public_key().to_hex())
    assert sm2_verify(public, data, signature, uid=uid)
    assert not sm2_verify(public, data + b"\x00", signature, uid=uid)
    assert not sm2_verify(public, data, signature, uid=uid + b"\x00")


# --- DER ---------------------------------------------------------------------------------------------------------


def test_der_of_the_standards_signature():
    der = signature_to_der(REC_SIGNATURE)
    # Both r and s have their top bit set: each INTEGER takes a leading zero byte (33 bytes).
    assert der.hex() == "3046022100" + REC_SIGNATURE[:32].hex() + "022100" + REC_SIGNATURE[32:].hex()
    assert signature_from_der(der) == REC_SIGNATURE
    short = _rs(1, 0x7F)
    assert signature_to_der(short).hex() == "300602010102017f"
    assert signature_from_der(signature_to_der(short)) == short
    assert signature_to_der(_rs(1, 0xFF)).hex() == "3007020101020200ff"  # 0xff needs its zero byte
    assert signature_from_der(bytes.fromhex("3007020101020200ff")) == _rs(1, 0xFF)


@given(r=st.integers(1, 2**256 - 1), s=st.integers(1, 2**256 - 1))
def test_der_round_trip(r, s):
    assert signature_from_der(signature_to_der(_rs(r, s))) == _rs(r, s)


@pytest.mark.parametrize(
    "der",
    [
        "",
        "3000",
        "30060201010201",  # truncated
        "3006020101020101" + "00",  # trailing byte
        "3106020101020101",  # not a SEQUENCE
        "3006030101020101",  # not an INTEGER
        "300702020001020101",  # non-minimal INTEGER
        "3006020181020101",  # negative
        "3006020100020101",  # zero
        "300402000200",  # empty INTEGERs
        "3025022100" + "ff" * 32 + "020101",  # the SEQUENCE's length is one short
        "3027022201" + "00" * 33 + "020101",  # r above 2^256
    ],
)
def test_der_malformed_is_refused(der):
    with pytest.raises(GmError) as refused:
        signature_from_der(bytes.fromhex(der))
    assert refused.value.code == "sm2_signature_der"
