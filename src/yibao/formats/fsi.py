"""The national interface envelope (FSI), both sides: what a HIS sends and what the gateway answers.

Shared by the gateway (yibao.fsi), the reference HIS client (`yibao fsi call`) and the tests, so the
three build and read one format: the message id, the gateway signature headers, Beijing time, amounts
as JSON numbers with two decimals, and — when an institution is set up for it — SM4 around input and
output with an SM3withSM2 signature in `cainfo` (yibao.crypto.gm).

Sources: /work/shared/research/nhsa_interface.md §1–3 (public HIS code copying the spec's tables).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

BEIJING = timezone(timedelta(hours=8))
INFVER = "V1.0"
SIGNTYPE_SM2 = "SM2"

HEADER_PAASID = "x-tif-paasid"
HEADER_TIMESTAMP = "x-tif-timestamp"
HEADER_NONCE = "x-tif-nonce"
HEADER_SIGNATURE = "x-tif-signature"

# Request fields: every envelope carries these (values may be empty where the spec allows it, except the ones in REQUIRED).
REQUEST_FIELDS = ("infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no", "dev_safe_info", "cainfo",
                  "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time", "fixmedins_code", "fixmedins_name",
                  "sign_no", "input")
REQUIRED = ("infno", "msgid", "mdtrtarea_admvs", "recer_sys_code", "infver", "opter_type", "opter", "opter_name", "inf_time",
            "fixmedins_code", "input")
OPTIONAL = ("fixmedins_soft_fcty",)  # newer spec versions [?]: accepted, not used

_MSGID_TAIL = re.compile(r"^(\d{14})(\d{4})$")


def beijing(at: datetime) -> datetime:
    """A time as Beijing sees it (SQLite hands back naive UTC)."""
    return (at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at).astimezone(BEIJING)


def inf_time(at: datetime) -> str:
    """yyyy-MM-dd HH:mm:ss, Beijing time: `inf_time`, and every time in `output`."""
    return beijing(at).strftime("%Y-%m-%d %H:%M:%S")


def stamp_ms(at: datetime) -> str:
    """yyyyMMddHHmmssSSS, Beijing time: `refmsg_time`, `respond_time`."""
    b = beijing(at)
    return b.strftime("%Y%m%d%H%M%S") + f"{b.microsecond // 1000:03d}"


def new_msgid(fixmedins_code: str, at: datetime, sequence: int | None = None) -> str:
    """institution code + yyyyMMddHHmmss (Beijing) + a 4-digit sequence (random when not given)."""
    seq = secrets.randbelow(10_000) if sequence is None else sequence % 10_000
    return f"{fixmedins_code}{beijing(at):%Y%m%d%H%M%S}{seq:04d}"


def msgid_problem(msgid: Any, fixmedins_code: str) -> tuple[str, str] | None:
    """Why ``msgid`` is not a message id of this institution (zh, en), or None."""
    if not isinstance(msgid, str) or not msgid.startswith(fixmedins_code) or len(msgid) > 40:
        return ("报文ID应为 定点机构编号+yyyyMMddHHmmss+4位顺序号", "must be the institution code + yyyyMMddHHmmss + a 4-digit sequence")
    m = _MSGID_TAIL.match(msgid[len(fixmedins_code):])
    if m is None:
        return ("报文ID应为 定点机构编号+yyyyMMddHHmmss+4位顺序号", "must be the institution code + yyyyMMddHHmmss + a 4-digit sequence")
    try:
        datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        return ("报文ID中的时间 yyyyMMddHHmmss 无效", "the yyyyMMddHHmmss inside the message id is not a valid time")
    return None


def parse_inf_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


# ---- the gateway signature (provincial practice: x-tif-* headers) --------------------------------------------

def gateway_signature(timestamp: str, token: str, nonce: str) -> str:
    """hex SHA-256 of timestamp + token + nonce + timestamp."""
    return hashlib.sha256((timestamp + token + nonce + timestamp).encode("utf-8")).hexdigest()


def gateway_headers(paasid: str, token: str, at: datetime, nonce: str | None = None) -> dict[str, str]:
    """The four headers a HIS sends: paasid (its institution code here), the Unix time in seconds, a fresh nonce, the signature."""
    timestamp = str(int(at.timestamp()))
    nonce = nonce or secrets.token_hex(16)
    return {HEADER_PAASID: paasid, HEADER_TIMESTAMP: timestamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: gateway_signature(timestamp, token, nonce)}


def signature_ok(timestamp: str, token: str, nonce: str, signature: str) -> bool:
    """Whether ``signature`` is the hex SHA-256 the gateway expects; anything not 64 hex digits is simply wrong
    (compare_digest raises on non-ASCII text)."""
    if len(signature) != 64 or not signature.isascii() or any(ch not in "0123456789abcdefABCDEF" for ch in signature):
        return False
    return hmac.compare_digest(gateway_signature(timestamp, token, nonce), signature.lower())


# ---- JSON with amounts as numbers of two decimals --------------------------------------------------------

class Number(str):
    """A JSON number written exactly as given ("325.00", "0.9000"): money keeps its two decimals on the wire."""


def amount(fen: int) -> Number:
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return Number(f"{sign}{whole}.{part:02d}")


def yuan_text_amount(text: str | None) -> Number | None:
    """A yuan string of a REST document ("325.00") as a JSON number of the envelope."""
    return None if text is None else Number(text)


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON, UTF-8 text; `Number` and `Decimal` values written as the numbers they are."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v, sort_keys=sort_keys)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v, sort_keys=sort_keys) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))  # str: 1E+999999999 stays 12 characters
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


MAX_DEPTH = 16  # the national input nests 3 levels; far deeper is an attack on the stack (parser, digest, signature)


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH."""


def loads(text: str | bytes) -> Any:
    """Parse an envelope with exact decimals: 12.5 becomes Decimal("12.5"), never a float. Nesting deeper than
    MAX_DEPTH raises TooDeep (a ValueError): the recursive writer (`canonical`) must never meet it."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except RecursionError:
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels") from None
    stack = [(value, 1)]
    while stack:  # iterative: the check itself must not recurse
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        if children and depth >= MAX_DEPTH:
            raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


def canonical(value: Any) -> str:
    """The input as one string, keys sorted, numbers as numbers: what the idempotency digest and the SM2 signature are
    taken over (and, in the encrypted mode, the plaintext that is encrypted)."""
    return dumps(value, sort_keys=True)


# ---- building a request (the HIS side) -----------------------------------------------------------------

@dataclass(frozen=True)
class Sender:
    """Who sends: the institution and its gateway token; with ``sm4_key`` and ``sm2_private``, the encrypted mode."""

    fixmedins_code: str
    token: str
    fixmedins_name: str = ""
    mdtrtarea_admvs: str = ""
    opter: str = "001"
    opter_name: str = "HIS"
    opter_type: str = "1"
    sm4_key: bytes | None = None
    sm2_private: Any = None  # yibao.crypto.gm.Sm2PrivateKey


def envelope(sender: Sender, infno: str, payload: dict[str, Any], at: datetime, *, msgid: str | None = None, sign_no: str = "",
             insuplc_admdvs: str = "", recer_sys_code: str = "YBXT") -> dict[str, Any]:
    """The request envelope. In the encrypted mode `input` is {"data": hex(SM4(plaintext))} and `cainfo` the hex SM2
    signature of the canonical plaintext (a guess at the provincial encoding: see docs/fsi.md)."""
    msgid = msgid or new_msgid(sender.fixmedins_code, at)
    body_input: Any = payload
    cainfo, signtype = "", ""
    if sender.sm4_key is not None:
        from yibao.crypto import gm

        plain = canonical(payload).encode("utf-8")
        body_input = {"encData": gm.sm4_encrypt(sender.sm4_key, plain).hex()}
        if sender.sm2_private is not None:
            cainfo, signtype = gm.sm2_sign(sender.sm2_private, plain).hex(), SIGNTYPE_SM2
    return {"infno": infno, "msgid": msgid, "mdtrtarea_admvs": sender.mdtrtarea_admvs, "insuplc_admdvs": insuplc_admdvs,
            "recer_sys_code": recer_sys_code, "dev_no": "", "dev_safe_info": "", "cainfo": cainfo, "signtype": signtype,
            "infver": INFVER, "opter_type": sender.opter_type, "opter": sender.opter, "opter_name": sender.opter_name,
            "inf_time": inf_time(at), "fixmedins_code": sender.fixmedins_code, "fixmedins_name": sender.fixmedins_name,
            "sign_no": sign_no, "input": body_input}


def request(sender: Sender, infno: str, payload: dict[str, Any], at: datetime, **kw: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of one call."""
    body = dumps(envelope(sender, infno, payload, at, **kw)).encode("utf-8")
    headers = {"Content-Type": "application/json", **gateway_headers(sender.fixmedins_code, sender.token, at)}
    return headers, body


def open_output(sender: Sender, answer: dict[str, Any], platform_public: Any = None) -> dict[str, Any]:
    """The answer with its `output` decrypted (encrypted mode), its signature checked when the platform's key is given."""
    out = answer.get("output")
    if sender.sm4_key is None or not isinstance(out, dict) or "encData" not in out:
        return answer
    from yibao.crypto import gm

    plain = gm.sm4_decrypt(sender.sm4_key, bytes.fromhex(out["encData"]))
    if platform_public is not None and not gm.sm2_verify(platform_public, plain, bytes.fromhex(answer.get("cainfo") or "")):
        raise ValueError("the platform's signature over the output does not verify")
    return {**answer, "output": loads(plain)}
