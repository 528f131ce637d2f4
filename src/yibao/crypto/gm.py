"""SM3, SM4 and SM2 — China's commercial cryptography (商用密码) for the national interface's envelope.

Provincial gateways of the national medical-insurance interface encrypt the envelope's ``input``/``output`` with
SM4 and sign with SM3withSM2 (``cainfo``, ``signtype``); docs/fsi-crypto.md describes the envelope, the vectors
and the measured speeds.

- **SM3** (GB/T 32905-2016) and **SM4** (GB/T 32907-2016) come from ``cryptography`` (OpenSSL): ``hashes.SM3``
  and ``algorithms.SM4``.
- **SM2** (GB/T 32918, recommended curve of GB/T 32918.5 / GM/T 0003.5): ``cryptography`` has no SM2 curve, so
  signing and verifying are implemented here with Python integers. The PyPI libraries were tried and not taken
  (docs/fsi-crypto.md has the table): ``gmssl`` 3.2.2 (2023) draws the nonce from ``random`` (a Mersenne Twister:
  a predictable k gives the private key away) and fixes the user ID; ``gmalg`` is correct but verifies ~30 times
  a second; ``tongsuopy`` (2023) cannot take a user ID; ``gmssl-pyx`` (GmSSL 3.2 in C) is correct but signs 8×
  slower than this module and prints GmSSL's error trace on every failed verification — it is the tests'
  independent cross-check; ``gmssl-python`` needs a system GmSSL library that neither PyPI nor Debian ships.
  SM2 signing is a few dozen lines of modular arithmetic that the standards' own examples pin down exactly
  (tests/adapters/crypto/test_gm.py reproduces the recommended curve's and GB/T 32918.2's test-curve example,
  r and s from the standard's k).
  **Not constant-time**: Python integers leak timing (their operations' cost depends on the values, and the
  scalar multiplication skips zero digits). Acceptable for a gateway signing requests with its own key over
  the network, not for a signer an attacker can time precisely on the same machine; say so before reusing it.
  The nonce k comes from ``secrets`` (the operating system's CSPRNG).

Errors are ``GmError`` with a short ``code`` and a message in Chinese and English. Verification never raises on
what an attacker controls (the message, the signature): it answers False.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DEFAULT_UID",
    "GmError",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "signature_from_der",
    "signature_to_der",
    "sm2_sign",
    "sm2_verify",
    "sm3",
    "sm3_hex",
    "sm4_decrypt",
    "sm4_encrypt",
]


class GmError(Exception):
    """A refusal of this module: a short ``code`` (e.g. ``sm4_padding``) and a message in Chinese and English."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{code}: {message_zh} / {message_en}")


_NAMES_ZH = {"data": "数据", "SM4 key": "SM4密钥", "plaintext": "明文", "ciphertext": "密文", "uid": "用户标识", "signature": "签名"}


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise GmError("not_bytes", f"{_NAMES_ZH[what]}应为字节串", f"{what} must be bytes")


# --- SM3 -------------------------------------------------------------------------------------------------------


def sm3(data: bytes) -> bytes:
    """The SM3 digest (32 bytes) of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(_as_bytes(data, "data"))
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    """The SM3 digest of ``data`` as 64 lowercase hex digits."""
    return sm3(data).hex()


# --- SM4 -------------------------------------------------------------------------------------------------------

SM4_KEY_SIZE = 16
_SM4_BLOCK = 16


def _sm4_ecb(key: bytes) -> Cipher:
    key = _as_bytes(key, "SM4 key")
    if len(key) != SM4_KEY_SIZE:
        raise GmError("sm4_key_length", f"SM4密钥应为16字节，收到{len(key)}字节", f"an SM4 key is 16 bytes, got {len(key)}")
    return Cipher(algorithms.SM4(key), modes.ECB())


def sm4_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7 padding: the ciphertext is 1–16 bytes longer than ``plaintext``, a multiple of 16.

    GUESS: ECB + PKCS#7 is what the provincial gateways we have seen use (the research notes' Shanxi envelope:
    "SM4-ECB/PKCS7"); the national document itself was not available. ECB hides nothing about repeated blocks
    and carries no integrity: the envelope's SM2 signature is what authenticates it.
    """
    cipher = _sm4_ecb(key)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(_as_bytes(plaintext, "plaintext")) + padder.finalize()
    encryptor = cipher.encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def sm4_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """The plaintext of :func:`sm4_encrypt`. Raises ``GmError`` for a key that is not 16 bytes, a ciphertext
    that is empty or not a multiple of 16 bytes, or bad padding — which is how a wrong key usually shows.

    "Usually": a wrong key yields random-looking blocks whose last byte still forms valid padding about once in
    256 tries (then the garbage plaintext comes back). Only the signature over the envelope rules that out.
    """
    cipher = _sm4_ecb(key)
    ciphertext = _as_bytes(ciphertext, "ciphertext")
    if not ciphertext or len(ciphertext) % _SM4_BLOCK:
        raise GmError(
            "sm4_length",
            f"SM4密文长度应为16字节的正整数倍，收到{len(ciphertext)}字节",
            f"an SM4 ciphertext is a positive multiple of 16 bytes, got {len(ciphertext)}",
        )
    decryptor = cipher.decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise GmError("sm4_padding", "SM4解密失败：填充无效（密钥错误或密文损坏）", "SM4 decryption failed: bad padding (wrong key or damaged ciphertext)") from None


# --- SM2 -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Curve:
    """A short Weierstrass curve y² = x³ + ax + b over GF(p) with a base point G of prime order n (cofactor 1)."""

    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int
    size: int = 32  # bytes per coordinate and per scalar

    def on_curve(self, x: int, y: int) -> bool:
        return 0 <= x < self.p and 0 <= y < self.p and (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0


# GB/T 32918.5-2017 (GM/T 0003.5-2012): the recommended 256-bit curve, the only one SM2 uses in practice.
SM2_CURVE = _Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)

# The user ID both sides assume when none is agreed (GM/T 0009's default; the research notes' userId).
DEFAULT_UID = b"1234567812345678"
_MAX_UID = 8191  # ENTL is two bytes of BITS: at most 65535 bits

# Points in Jacobian coordinates (X, Y, Z) standing for (X/Z², Y/Z³); Z == 0 is the point at infinity.
_INFINITY = (1, 1, 0)


def _double(c: _Curve, pt: tuple[int, int, int]) -> tuple[int, int, int]:
    x1, y1, z1 = pt
    if z1 == 0 or y1 == 0:
        return _INFINITY
    p = c.p
    yy = y1 * y1 % p
    s = 4 * x1 * yy % p
    zz = z1 * z1 % p
    m = (3 * x1 * x1 + c.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y1 * z1 % p


def _add(c: _Curve, pt: tuple[int, int, int], qt: tuple[int, int, int]) -> tuple[int, int, int]:
    x1, y1, z1 = pt
    x2, y2, z2 = qt
    if z1 == 0:
        return qt
    if z2 == 0:
        return pt
    p = c.p
    z1z1 = z1 * z1 % p
    if z2 == 1:  # an affine point (the precomputed tables): skip the multiplications by Z2
        u1, s1 = x1, y1
    else:
        z2z2 = z2 * z2 % p
        u1 = x1 * z2z2 % p
        s1 = y1 * z2 * z2z2 % p
    u2 = x2 * z1z1 % p
    s2 = y2 * z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if h == 0:
        return _double(c, pt) if r == 0 else _INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - s1 * hhh) % p, z1 * z2 * h % p


def _affine(c: _Curve, pt: tuple[int, int, int]) -> tuple[int, int] | None:
    x, y, z = pt
    if z == 0:
        return None
    zinv = pow(z, -1, c.p)
    zinv2 = zinv * zinv % c.p
    return x * zinv2 % c.p, y * zinv2 * zinv % c.p


def _multiply(c: _Curve, k: int, x: int, y: int) -> tuple[int, int, int]:
    """k·(x, y) with a 4-bit fixed window (for a public key: verification)."""
    table = [_INFINITY, (x, y, 1)]
    for _ in range(14):
        table.append(_add(c, table[-1], (x, y, 1)))
    acc = _INFINITY
    for shift in range(4 * ((k.bit_length() + 3) // 4) - 4, -4, -4):
        for _ in range(4):
            acc = _double(c, acc)
        digit = (k >> shift) & 0xF
        if digit:
            acc = _add(c, acc, table[digit])
    return acc


def _batch_affine(c: _Curve, points: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The points (none at infinity) with Z = 1, for one modular inversion in all (Montgomery's trick)."""
    p = c.p
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % p)
    inverse = pow(prefix[-1], -1, p)
    out: list[tuple[int, int, int]] = [_INFINITY] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zinv = inverse * prefix[i] % p  # 1/z_i
        inverse = inverse * z % p  # 1/(z_0 … z_{i-1})
        zinv2 = zinv * zinv % p
        out[i] = (x * zinv2 % p, y * zinv2 * zinv % p, 1)
    return out


def _comb_table(c: _Curve, x: int, y: int) -> list[list[tuple[int, int, int]]]:
    """table[i][j] = j·16^i·(x, y), affine: k·(x, y) is then at most 64 additions and no doubling.

    No entry but j = 0 is the point at infinity: n is a prime above 16, so it never divides j·16^i.
    """
    rows = (c.n.bit_length() + 3) // 4
    points: list[tuple[int, int, int]] = []
    base = (x, y, 1)
    for _ in range(rows):
        row = [base]
        for _ in range(14):
            row.append(_add(c, row[-1], base))
        points.extend(row)
        base = _double(c, _double(c, _double(c, _double(c, base))))
    flat = _batch_affine(c, points)
    return [[_INFINITY, *flat[15 * i : 15 * i + 15]] for i in range(rows)]


def _multiply_comb(table: list[list[tuple[int, int, int]]], c: _Curve, k: int) -> tuple[int, int, int]:
    """k·P from P's comb table; k below n."""
    acc = _INFINITY
    i = 0
    while k:
        digit = k & 0xF
        if digit:
            acc = _add(c, acc, table[i][digit])
        k >>= 4
        i += 1
    return acc


_BASE_TABLES: dict[_Curve, list[list[tuple[int, int, int]]]] = {}


def _multiply_base(c: _Curve, k: int) -> tuple[int, int, int]:
    """k·G: signing's one multiplication (G's table is built once per process, a few milliseconds)."""
    table = _BASE_TABLES.get(c)
    if table is None:
        table = _BASE_TABLES[c] = _comb_table(c, c.gx, c.gy)
    return _multiply_comb(table, c, k)


def _z(c: _Curve, uid: bytes, x: int, y: int) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), GB/T 32918.2 §5.5: binds the signer's ID and key."""
    if len(uid) > _MAX_UID:
        raise GmError("sm2_uid_length", "SM2用户标识过长（至多8191字节）", "the SM2 user ID is too long (8191 bytes at most)")
    size = c.size
    return sm3(
        (len(uid) * 8).to_bytes(2, "big")
        + uid
        + b"".join(v.to_bytes(size, "big") for v in (c.a, c.b, c.gx, c.gy, x, y))
    )


def _digest(c: _Curve, uid: bytes, x: int, y: int, data: bytes) -> int:
    """e = SM3(Z ‖ M) as an integer (GB/T 32918.2 §6.1 A1–A2)."""
    return int.from_bytes(sm3(_z(c, uid, x, y) + data), "big")


def _sign_digest(c: _Curve, d: int, e: int, k: int | None = None) -> tuple[int, int]:
    """(r, s) for the digest e under the private key d (GB/T 32918.2 §6.1 A3–A7). ``k`` is for the standard's
    examples only: production always draws it from ``secrets``."""
    n = c.n
    inverse = pow(1 + d, -1, n)
    while True:
        nonce = k if k is not None else secrets.randbelow(n - 1) + 1
        x1, _ = _affine(c, _multiply_base(c, nonce))  # type: ignore[misc]  # nonce in [1, n-1]: never infinity
        r = (e + x1) % n
        s = inverse * (nonce - r * d) % n
        if r != 0 and r + nonce != n and s != 0:
            return r, s
        if k is not None:
            raise GmError("sm2_bad_nonce", "给定的k不可用", "the given k cannot be used")


def _verify_digest(
    c: _Curve, x: int, y: int, e: int, r: int, s: int, table: list[list[tuple[int, int, int]]] | None = None
) -> bool:
    """GB/T 32918.2 §7.1 B1–B7; ``table`` is the public key's comb table when it has one."""
    n = c.n
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    tp = _multiply_comb(table, c, t) if table is not None else _multiply(c, t, x, y)
    point = _affine(c, _add(c, _multiply_base(c, s), tp))
    return point is not None and (e + point[0]) % n == r


# A public key that has verified this many signatures gets its own comb table (~10 ms to build, ~180 kB, the
# cost of ~5 verifications): a gateway verifies every answer with the same platform key, and the table makes
# verifying ~3× faster. A key parsed for one verification never pays for it.
_TABLE_AFTER = 8


class Sm2PublicKey:
    """A point of the SM2 curve, checked on the way in (on the curve, not infinity; the cofactor is 1, so every
    such point has order n). Keep the object to verify many signatures: it speeds itself up after a few."""

    __slots__ = ("x", "y", "_table", "_verified")

    def __init__(self, x: int, y: int) -> None:
        if not SM2_CURVE.on_curve(x, y):
            raise GmError("sm2_public_key", "SM2公钥不在曲线上", "the SM2 public key is not a point of the curve")
        self.x = x
        self.y = y
        self._table: list[list[tuple[int, int, int]]] | None = None
        self._verified = 0

    @classmethod
    def from_hex(cls, text: str) -> Sm2PublicKey:
        """Uncompressed ``04‖x‖y`` (130 hex digits) or ``x‖y`` (128), either case; surrounding space ignored."""
        if not isinstance(text, str):
            raise GmError("sm2_public_key", "SM2公钥应为十六进制字符串", "an SM2 public key is a hex string")
        body = text.strip()
        if len(body) == 130 and body[:2] == "04":
            body = body[2:]
        if len(body) != 128:
            raise GmError(
                "sm2_public_key",
                "SM2公钥应为130位十六进制（04‖x‖y）或128位（x‖y）",
                "an SM2 public key is 130 hex digits (04‖x‖y) or 128 (x‖y)",
            )
        raw = _unhex(body, "sm2_public_key")
        return cls(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    def to_hex(self) -> str:
        """``04‖x‖y``, 130 lowercase hex digits."""
        return "04" + self.x.to_bytes(32, "big").hex() + self.y.to_bytes(32, "big").hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sm2PublicKey) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Sm2PublicKey({self.to_hex()!r})"


class Sm2PrivateKey:
    """A scalar d in [1, n-2] (1 + d must be invertible mod n). Its repr never shows d."""

    __slots__ = ("_d", "_public")

    def __init__(self, d: int) -> None:
        if not 1 <= d <= SM2_CURVE.n - 2:
            raise GmError("sm2_private_key", "SM2私钥超出范围[1, n-2]", "the SM2 private key is out of range [1, n-2]")
        self._d = d
        self._public: Sm2PublicKey | None = None

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        return cls(secrets.randbelow(SM2_CURVE.n - 2) + 1)

    @classmethod
    def from_hex(cls, text: str) -> Sm2PrivateKey:
        """64 hex digits (32 bytes), either case; surrounding space ignored."""
        if not isinstance(text, str) or len(text.strip()) != 64:
            raise GmError("sm2_private_key", "SM2私钥应为64位十六进制（32字节）", "an SM2 private key is 64 hex digits (32 bytes)")
        return cls(int.from_bytes(_unhex(text.strip(), "sm2_private_key"), "big"))

    def to_hex(self) -> str:
        return self._d.to_bytes(32, "big").hex()

    def public_key(self) -> Sm2PublicKey:
        if self._public is None:
            x, y = _affine(SM2_CURVE, _multiply_base(SM2_CURVE, self._d))  # type: ignore[misc]  # d in [1, n-2]
            self._public = Sm2PublicKey(x, y)
        return self._public

    def __repr__(self) -> str:
        return "Sm2PrivateKey(…)"


def _unhex(text: str, code: str) -> bytes:
    # Hex digits only: bytes.fromhex would skip spaces inside, making a 64-character string a shorter key.
    if len(text) % 2 or text.strip(string.hexdigits):
        raise GmError(code, "应为十六进制数字", "expected hex digits")
    return bytes.fromhex(text)


def sm2_sign(private: Sm2PrivateKey, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
    """SM3withSM2 over ``data`` for the signer's ``uid``: 64 bytes r‖s (each 32 bytes, big-endian).

    Java signers (BouncyCastle's ``SM3withSM2``) usually exchange the DER form instead: see
    :func:`signature_to_der` / :func:`signature_from_der`.
    """
    if not isinstance(private, Sm2PrivateKey):
        raise GmError("sm2_private_key", "应为SM2私钥", "expected an Sm2PrivateKey")
    public = private.public_key()
    e = _digest(SM2_CURVE, _as_bytes(uid, "uid"), public.x, public.y, _as_bytes(data, "data"))
    r, s = _sign_digest(SM2_CURVE, private._d, e)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_verify(public: Sm2PublicKey, data: bytes, signature: bytes, uid: bytes = DEFAULT_UID) -> bool:
    """True when ``signature`` (64 bytes r‖s) is ``public``'s SM3withSM2 signature of ``data`` for ``uid``.

    False for anything else — a wrong length or type, r or s out of range, a user ID too long — never an
    exception from what the sender controls. A key that is not an ``Sm2PublicKey`` is the caller's bug: GmError.
    """
    if not isinstance(public, Sm2PublicKey):
        raise GmError("sm2_public_key", "应为SM2公钥", "expected an Sm2PublicKey")
    if not isinstance(signature, (bytes, bytearray, memoryview)) or len(signature) != 64:
        return False
    if not isinstance(data, (bytes, bytearray, memoryview)) or not isinstance(uid, (bytes, bytearray, memoryview)):
        return False
    if len(uid) > _MAX_UID:
        return False
    signature = bytes(signature)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    e = _digest(SM2_CURVE, bytes(uid), public.x, public.y, bytes(data))
    if public._table is None:
        public._verified += 1
        if public._verified >= _TABLE_AFTER:  # two threads may both build it: harmless, the same table
            public._table = _comb_table(SM2_CURVE, public.x, public.y)
    return _verify_digest(SM2_CURVE, public.x, public.y, e, r, s, public._table)


# --- DER (SEQUENCE { INTEGER r, INTEGER s }) -------------------------------------------------------------------


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0x00 when the top bit is set
    return b"\x02" + bytes([len(body)]) + body


def signature_to_der(signature: bytes) -> bytes:
    """64 bytes r‖s → DER ``SEQUENCE { INTEGER r, INTEGER s }`` (what Java's ``SM3withSM2`` emits)."""
    signature = _as_bytes(signature, "signature")
    if len(signature) != 64:
        raise GmError("sm2_signature", "SM2签名应为64字节（r‖s）", "an SM2 signature is 64 bytes (r‖s)")
    body = _der_integer(int.from_bytes(signature[:32], "big")) + _der_integer(int.from_bytes(signature[32:], "big"))
    return b"\x30" + bytes([len(body)]) + body


def signature_from_der(der: bytes) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` → 64 bytes r‖s. Strict DER (minimal lengths and integers, no
    trailing bytes, r and s positive and below 2^256); anything else raises ``GmError``."""
    der = _as_bytes(der, "signature")
    bad = GmError("sm2_signature_der", "SM2签名的DER编码无效", "the SM2 signature's DER encoding is invalid")
    # Every length here is below 128 (two 33-byte integers), so the short length form is the only DER one.
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise bad
    values = []
    at = 2
    for _ in range(2):
        if at + 2 > len(der) or der[at] != 0x02:
            raise bad
        length = der[at + 1]
        body = der[at + 2 : at + 2 + length]
        if length == 0 or length > 33 or len(body) != length:
            raise bad
        if body[0] & 0x80:  # negative
            raise bad
        if length > 1 and body[0] == 0 and not body[1] & 0x80:  # not minimal
            raise bad
        value = int.from_bytes(body, "big")
        if value == 0 or value.bit_length() > 256:
            raise bad
        values.append(value)
        at += 2 + length
    if at != len(der):
        raise bad
    return values[0].to_bytes(32, "big") + values[1].to_bytes(32, "big")
