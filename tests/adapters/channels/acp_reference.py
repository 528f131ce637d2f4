"""An independent reading of UnionPay's published ACP 5.1.0 rules — the demo SDK's, signMethod 01 — for tests.

No UnionPay SDK is on PyPI, so this module plays the SDK: written from the published rules, it imports nothing
of yibao's signing or parsing, and it is used both ways (to sign what a merchant sends the sandbox, and to sign
the published examples the connector must accept; to verify what the sandbox answers and notifies).

The rules, as the demo SDK (Java `SDKUtil`/`AcpService`/`CertUtil`, its Ruby and C# ports) has them:
- sign: drop blank fields (`filterBlank`), put `certId` (the signing certificate's serial, decimal), join every
  field but `signature` as `k=v` sorted by key with `&` (`coverMap2String`), SHA-256 it, take the lower-case
  hex, sign that hex text with SHA256withRSA, base64 → `signature`;
- verify (5.1.0): take `signPubKeyCert`; build a path from it through the middle to the root certificate
  (PKIX, no revocation), the certificate within its validity; split the subject's CN on `@` — its third part
  must be `中国银联股份有限公司` (or, with ifValidateCNName off, the test environment's `00040000:SIGN`); then
  verify `signature` over the hex SHA-256 of `coverMap2String` of every field but `signature`, blanks kept;
- a synchronous answer is `k=v&…` text, not URL-encoded, where a value opened by `{` or `[` runs to the
  matching close (`parseQString`); notifications come as ordinary form posts.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

UNIONPAY_CNNAME = "中国银联股份有限公司"
TEST_CNNAME = "00040000:SIGN"
_JAVA_TRIM = "".join(map(chr, range(33)))  # what Java's String.trim() removes (filterBlank's isEmpty)


def cover_map_to_string(data: dict[str, str]) -> str:
    return "&".join(f"{k}={data[k]}" for k in sorted(data) if k.strip() != "signature")


def _hex_sha256(data: dict[str, str]) -> bytes:
    return hashlib.sha256(cover_map_to_string(data).encode("utf-8")).hexdigest().encode("ascii")


def sign(data: dict[str, str], key: rsa.RSAPrivateKey, cert_id: str) -> dict[str, str]:
    out = {k: v for k, v in data.items() if v is not None and v.strip(_JAVA_TRIM) != ""}
    out["certId"] = cert_id
    out["signature"] = base64.b64encode(key.sign(_hex_sha256(out), padding.PKCS1v15(), hashes.SHA256())).decode()
    return out


def sign_as_unionpay(data: dict[str, str], key: rsa.RSAPrivateKey, cert: x509.Certificate) -> dict[str, str]:
    """What UnionPay sends: its signing certificate in signPubKeyCert, signed over every field but signature."""
    out = dict(data)
    out["signPubKeyCert"] = cert.public_bytes(serialization.Encoding.PEM).decode()
    out["signature"] = base64.b64encode(key.sign(_hex_sha256(out), padding.PKCS1v15(), hashes.SHA256())).decode()
    return out


def cn_owner(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    parts = str(cns[0].value).split("@") if cns else []
    return parts[2] if len(parts) > 2 else ""


def verify_cert(cert: x509.Certificate, middle: x509.Certificate, root: x509.Certificate, *, now: datetime,
                validate_cn_name: bool = True) -> bool:
    try:
        verifier = (PolicyBuilder().store(Store([root])).time(now)
                    .extension_policies(ca_policy=ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None),
                                        ee_policy=ExtensionPolicy.permit_all())
                    .build_client_verifier())
        verifier.verify(cert, [middle])
    except VerificationError:
        return False
    owner = cn_owner(cert)
    return owner == UNIONPAY_CNNAME or (not validate_cn_name and owner == TEST_CNNAME)


def validate(data: dict[str, str], middle: x509.Certificate, root: x509.Certificate, *, now: datetime | None = None,
             validate_cn_name: bool = True) -> bool:
    pem = data.get("signPubKeyCert")
    if not pem or not data.get("signature"):
        return False
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return False
    if not verify_cert(cert, middle, root, now=now or datetime.now(timezone.utc), validate_cn_name=validate_cn_name):
        return False
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(data["signature"]), _hex_sha256(data), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_request(data: dict[str, str], key: rsa.RSAPublicKey) -> bool:
    """What UnionPay does with a merchant's request: the key certId names, over the same hex digest."""
    try:
        key.verify(base64.b64decode(data["signature"]), _hex_sha256(data), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def parse_q_string(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    key, temp, is_key, open_char = "", "", True, ""
    for ch in text:
        if is_key:
            if ch == "=":
                key, temp, is_key = temp, "", False
            else:
                temp += ch
            continue
        if open_char:
            if ch == open_char:
                open_char = ""
        elif ch == "{":
            open_char = "}"
        elif ch == "[":
            open_char = "]"
        if ch == "&" and not open_char:
            out[key], temp, is_key = temp, "", True
        else:
            temp += ch
    if key or temp:
        out[key if not is_key else temp] = temp if not is_key else ""
    return out


def to_q_string(data: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in data.items())


# ---- a test certificate authority: root → middle → signing ------------------------------------------

@dataclass
class AcpCA:
    root: x509.Certificate
    middle: x509.Certificate
    middle_key: rsa.RSAPrivateKey
    signer: x509.Certificate
    signer_key: rsa.RSAPrivateKey


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject: str, key: rsa.RSAPublicKey, issuer: str, issuer_key: rsa.RSAPrivateKey, *, ca: bool, serial: int,
          start: datetime, end: datetime) -> x509.Certificate:
    def name(cn: str, is_ca: bool) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China Financial CA TEST"),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CA" if is_ca else "Enterprises"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name(subject, ca)).issuer_name(name(issuer, True)).public_key(key).serial_number(serial)
            .not_valid_before(start).not_valid_after(end).add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def make_ca(*, owner: str = UNIONPAY_CNNAME, now: datetime | None = None, signer_days: int = 365, signer_key: rsa.RSAPrivateKey | None = None,
            middle_issued_by_root: bool = True) -> AcpCA:
    """A CA shaped like UnionPay's: the signing CN `041@<id>@<owner>@<n>`, the owner being what the SDK checks."""
    now = now or datetime.now(timezone.utc)
    root_key, middle_key, signer_key = _key(), _key(), signer_key or _key()
    start = now - timedelta(days=2)
    root = _cert("CFCA TEST OCA1 ROOT", root_key.public_key(), "CFCA TEST OCA1 ROOT", root_key, ca=True, serial=11, start=start,
                 end=now + timedelta(days=3650))
    issuer_key = root_key if middle_issued_by_root else _key()
    middle = _cert("CFCA TEST OCA1", middle_key.public_key(), "CFCA TEST OCA1 ROOT", issuer_key, ca=True, serial=12, start=start,
                   end=now + timedelta(days=3650))
    return reissue(AcpCA(root, middle, middle_key, middle, signer_key), owner=owner, now=now, signer_days=signer_days)


def reissue(ca: AcpCA, *, owner: str = UNIONPAY_CNNAME, now: datetime | None = None, signer_days: int = 365) -> AcpCA:
    """Another signing certificate under the same middle and root (another owner, or already expired)."""
    now = now or datetime.now(timezone.utc)
    end = now + timedelta(days=signer_days) if signer_days > 0 else now - timedelta(days=1)
    signer = _cert(f"041@Z12400000000001@{owner}@00000001", ca.signer_key.public_key(), "CFCA TEST OCA1", ca.middle_key, ca=False,
                   serial=69042905377, start=now - timedelta(days=2), end=end)
    return AcpCA(ca.root, ca.middle, ca.middle_key, signer, ca.signer_key)

