"""UnionPay 全渠道 (ACP 5.1.0, online gateway) wire format: pure transformers, no I/O.

What follows the published ACP 5.1.0 interface and its demo SDK's rules:
- Requests are form posts of `k=v` fields. Signature (`signMethod=01`): drop empty fields, set `certId`
  (the decimal serial of our signing certificate), join every field but `signature` as ASCII-sorted
  `k=v&…`, take the lower-case hex of its SHA-256, sign those 64 hex characters with SHA256withRSA, base64.
- Synchronous answers come back as raw `k=v&…` text — not URL-encoded; a value in `{…}` or `[…]` may hold
  `&` and `=` (tokenPayData) — signed the same way over every field but `signature`, empty ones included,
  with UnionPay's signing certificate in `signPubKeyCert` (PEM). That certificate is trusted only if it
  chains to UnionPay's middle and root certificates (configured), is within its validity, and the third
  `@`-separated part of its CN names UnionPay (`中国银联股份有限公司`; UnionPay's test environment signs as
  `00040000:SIGN`, accepted only when `validate_cn_name` is off — the SDK's `ifValidateCNName`).
- Notifications are form posts (URL-encoded) to our `backUrl`, verified as answers are; HTTP 200 is the ack.
- An order is named by `orderId` **and** `txnTime` (YYYYMMDDhhmmss, Beijing): a query sends the original's.
- `respCode` (published table): 00 success/accepted; 03/04/05 not known yet → query; 12 duplicate transaction;
  34 no such transaction; 02/06 not open/busy (nothing done: unknown); anything else a refusal. In a query's
  answer `origRespCode` is the original's own outcome: 00 or A6 (有缺陷的成功) succeeded; 03/04/05 pending.
- Back consume and refund answer 00 = *accepted*: the result comes by notification or query.
- Amounts `txnAmt` are fen as digits; `traceTime` and `settleDate` are MMDDhhmmss and MMDD (no year).
- The statement (`txnType=76`, `fileType=00`, `settleDate` MMDD) is `fileContent` = base64 of a zlib-deflated
  ZIP holding the merchant's `…ZM_…` file: fixed-width records, one space between fields (`ZM_FIELDS`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.x509.oid import NameOID

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    Statement,
    StatementError,
    StatementRow,
    bad_signature,
    check_statement_totals,
    declined,
    not_found_at,
    unknown,
)
from yibao.channels.crypto import key_serial, rsa_sign
from yibao.channels.wire import CHINA, WireError, compact_time, digits_to_fen, fen_to_digits, parse_compact_time

NAME = "unionpay"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
FILE_PATH = "/"  # the file-transfer host (filedownload.95516.com) takes its posts at its root
FRONT_PATH = "/gateway/api/frontTransReq.do"  # front-end transactions: posted by the holder's browser, not by us
UNIONPAY_CN = "中国银联股份有限公司"
TEST_ENV_CN = "00040000:SIGN"
TOKEN_BIZ = "000902"  # 无跳转 (token) payment
SUCCESS = ("00", "A6")  # A6: 有缺陷的成功 — a success
UNKNOWN_CODES = ("03", "04", "05")
BUSY_CODES = ("02", "06")  # not open / busy: nothing was done, but only a query says so
DUPLICATE = "12"
NOT_FOUND = "34"


@dataclass(frozen=True)
class UnionPayConfig:
    base_url: str
    mer_id: str
    cert_id: str  # our signing certificate's serial, decimal (from the PFX UnionPay issued)
    merchant_key: RSAPrivateKey = field(repr=False)
    root_cert: x509.Certificate | None = field(default=None, repr=False)  # UnionPay's root (acp_prod_root.cer)
    middle_cert: x509.Certificate | None = field(default=None, repr=False)  # UnionPay's middle (acp_prod_middle.cer)
    notify_url: str | None = None
    timeout: float = 5.0
    tr_id: str = "62000000001"  # the token requestor id UnionPay assigns the merchant (无跳转)
    validate_cn_name: bool = True  # off only against UnionPay's test environment (CN 00040000:SIGN)
    file_url: str | None = None  # the file-transfer host; None: base_url
    name: str = NAME


def cert_id_of(key: RSAPrivateKey | RSAPublicKey) -> str:
    """A decimal certificate serial for a key we hold no certificate for (the platform stores keys, not PFX files)."""
    return str(int(key_serial(key)[:16], 16))


# ---- signatures ----------------------------------------------------------------------------------

def signing_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def digest_hex(params: Mapping[str, str]) -> bytes:
    return hashlib.sha256(signing_string(params).encode("utf-8")).hexdigest().encode()


def sign(cfg: UnionPayConfig, params: Mapping[str, str]) -> dict[str, str]:
    """The SDK's request signing: blank fields dropped (filterBlank), certId set, then RSA over the hex digest."""
    data = {k: v for k, v in params.items() if any(ord(c) > 32 for c in v) and k != "signature"}  # Java trim(): ≤ U+0020 is blank
    data["certId"] = cfg.cert_id
    return {**data, "signature": rsa_sign(cfg.merchant_key, digest_hex(data))}


def trusted_key(cfg: UnionPayConfig, pem: str | None, now: datetime) -> RSAPublicKey | None:
    """UnionPay's signing key from `signPubKeyCert`, if the certificate is one UnionPay's root vouches for."""
    if not pem or cfg.root_cert is None or cfg.middle_cert is None:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        chain = ((cert, cfg.middle_cert), (cfg.middle_cert, cfg.root_cert), (cfg.root_cert, cfg.root_cert))
        for child, parent in chain:
            if child.issuer != parent.subject or not child.not_valid_before_utc <= now <= child.not_valid_after_utc:
                return None
            child.verify_directly_issued_by(parent)
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        parts = str(cns[0].value).split("@") if cns else []
        owner = parts[2] if len(parts) > 2 else ""
        if owner != UNIONPAY_CN and (cfg.validate_cn_name or owner != TEST_ENV_CN):
            return None
        key = cert.public_key()
    except (ValueError, TypeError, InvalidSignature):
        return None
    return key if isinstance(key, RSAPublicKey) else None


def verify(cfg: UnionPayConfig, params: Mapping[str, str], now: datetime) -> bool:
    key = trusted_key(cfg, params.get("signPubKeyCert"), now)
    sig = params.get("signature")
    if key is None or not sig:
        return False
    try:
        key.verify(base64.b64decode(sig, validate=True), digest_hex(params), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


# ---- the two text forms ----------------------------------------------------------------------------

def parse_answer_text(text: str) -> dict[str, str]:
    """A synchronous answer: raw `k=v&…`, a `{…}`/`[…]` value kept whole (the SDK's parseQString)."""
    out: dict[str, str] = {}
    key: str | None = None
    buf: list[str] = []
    closing = ""
    for ch in text:
        if key is None:
            if ch == "=":
                key, buf = "".join(buf), []
                if not key:
                    raise WireError("a field without a name")
            elif ch == "&":
                raise WireError("a field without a value")
            else:
                buf.append(ch)
            continue
        if closing:
            if ch == closing:
                closing = ""
        elif ch in "{[":
            closing = "}" if ch == "{" else "]"
        if ch == "&" and not closing:
            out[key], key, buf = "".join(buf), None, []
        else:
            buf.append(ch)
    if key is not None:
        out[key] = "".join(buf)
    elif buf:
        raise WireError("a field without a value")
    return out


def answer_text(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


def parse_form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)) if body else {}


def nested(value: str) -> dict[str, str]:
    """`{token=…&trId=…}` → its fields."""
    if not (value.startswith("{") and value.endswith("}")):
        raise WireError(f"not a {{k=v&…}} value: {value!r}")
    return dict(part.split("=", 1) for part in value[1:-1].split("&") if part)


# ---- requests ----------------------------------------------------------------------------------

def _base(cfg: UnionPayConfig, txn_type: str, sub: str, biz: str, txn_time: datetime, **fields: str) -> dict[str, str]:
    return {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": txn_type, "txnSubType": sub, "bizType": biz,
            "accessType": "0", "merId": cfg.mer_id, "txnTime": compact_time(txn_time), **fields}


def token_data(cfg: UnionPayConfig, token: str) -> str:
    return "{token=" + token + "&trId=" + cfg.tr_id + "}"


def open_token_params(cfg: UnionPayConfig, req: AgreementRequest, at: datetime) -> dict[str, str]:
    """The front-end token opening (79/00): the signed form the holder's browser posts to frontTransReq.do.
    `frontUrl` takes the holder back, `backUrl` gets the signed result; `reqReserved` (echoed by UnionPay) carries
    our holder token (on a real page the holder identifies themself by card)."""
    fields = dict(channelType="07", orderId=req.out_agreement_no, backUrl=req.notify_url or cfg.notify_url or "",
                  tokenPayData="{trId=" + cfg.tr_id + "&tokenType=01}", reqReserved=req.holder_token)
    if req.return_url:
        fields["frontUrl"] = req.return_url
    return sign(cfg, _base(cfg, "79", "00", TOKEN_BIZ, at, **fields))


def open_query_params(cfg: UnionPayConfig, out_agreement_no: str, opened_at: datetime) -> dict[str, str]:
    """开通查询 (78/02): the opening order's orderId and its own txnTime."""
    return sign(cfg, _base(cfg, "78", "02", TOKEN_BIZ, opened_at, channelType="07", orderId=out_agreement_no))


def delete_token_params(cfg: UnionPayConfig, order_id: str, token: str, now: datetime) -> dict[str, str]:
    """删除 token (74/01): a new order naming the token."""
    return sign(cfg, _base(cfg, "74", "01", TOKEN_BIZ, now, channelType="07", orderId=order_id, tokenPayData=token_data(cfg, token)))


def pay_params(cfg: UnionPayConfig, req: PaymentRequest, at: datetime) -> dict[str, str]:
    return sign(cfg, _base(cfg, "01", "01", TOKEN_BIZ, at, channelType="07", orderId=req.out_trade_no, currencyCode="156",
                           txnAmt=fen_to_digits(req.amount_fen), backUrl=cfg.notify_url or "", orderDesc=req.description,
                           tokenPayData=token_data(cfg, req.agreement_no)))


def query_params(cfg: UnionPayConfig, order_id: str, sent_at: datetime) -> dict[str, str]:
    """交易状态查询 (00/00): the original's orderId and txnTime."""
    return sign(cfg, _base(cfg, "00", "00", "000000", sent_at, orderId=order_id))


def refund_params(cfg: UnionPayConfig, req: RefundRequest, orig_qry_id: str, at: datetime) -> dict[str, str]:
    """退货 (04/00) naming the trade by its queryId; `reqReserved` (echoed in the answer and the notification)
    carries our order number, which UnionPay's refund notification does not otherwise name."""
    return sign(cfg, _base(cfg, "04", "00", TOKEN_BIZ, at, channelType="07", orderId=req.out_refund_no, origQryId=orig_qry_id,
                           txnAmt=fen_to_digits(req.amount_fen), currencyCode="156", backUrl=cfg.notify_url or "",
                           reqReserved=req.out_trade_no))


def file_params(cfg: UnionPayConfig, day: date, now: datetime) -> dict[str, str]:
    return sign(cfg, _base(cfg, "76", "01", "000000", now, channelType="07", settleDate=f"{day:%m%d}", fileType="00"))


# ---- answers -----------------------------------------------------------------------------------

def open_answer(cfg: UnionPayConfig, status: int, body: bytes, what: str, now: datetime) -> dict[str, str]:
    if status != 200:
        raise unknown(cfg.name, f"HTTP_{status}", "no answer from the gateway")
    try:
        params = parse_answer_text(body.decode("utf-8"))
    except (UnicodeDecodeError, WireError):
        raise unknown(cfg.name, "garbled_answer", "the answer is not k=v text") from None
    if not verify(cfg, params, now):
        raise bad_signature(cfg.name, f"answer about {what}")
    return params


def check_resp(cfg: UnionPayConfig, params: Mapping[str, str], what: str) -> str:
    """00 passes; the rest as the published table says. Returns the code (00 or 12 for the caller to resolve)."""
    code = params.get("respCode", "")
    message = params.get("respMsg", "")
    if code in SUCCESS or code == DUPLICATE:
        return code
    if code in UNKNOWN_CODES or code in BUSY_CODES or not code:
        raise unknown(cfg.name, code or "no_code", message)
    if code == NOT_FOUND:
        raise not_found_at(cfg.name, what)
    raise declined(cfg.name, code, message)


def _year_of(mmdd: str, near: datetime) -> datetime:
    """A UnionPay MMDD… time has no year: the one nearest ``near`` (a trade settles within days of its txnTime)."""
    base = near.astimezone(CHINA)
    best = None
    for year in (base.year - 1, base.year, base.year + 1):
        try:
            at = datetime.strptime(f"{year}{mmdd}", "%Y%m%d%H%M%S" if len(mmdd) == 10 else "%Y%m%d").replace(tzinfo=CHINA)
        except ValueError:
            continue
        if best is None or abs(at - base) < abs(best - base):
            best = at
    if best is None:
        raise WireError(f"not an MMDD time: {mmdd!r}")
    return best


def payment_from(params: Mapping[str, str], out_trade_no: str) -> PaymentResult:
    """A query's answer about a consume: `origRespCode` is its outcome; `traceTime` (MMDDhhmmss) when it was paid."""
    if params.get("orderId") != out_trade_no:
        raise WireError("the answer is about another order")
    # The orderId names the order; the answer's txnType is the original's (01) as we read ACP — or the query's own (00),
    # which we may have misread [guess]: either is taken; another transaction's type is not.
    if params.get("txnType") not in ("01", "00"):
        raise WireError(f"not a consume: txnType {params.get('txnType')!r}")
    orig = params.get("origRespCode", "")
    status = "succeeded" if orig in SUCCESS else "processing" if orig in UNKNOWN_CODES or not orig else "failed"
    paid_at = None
    if status == "succeeded" and params.get("traceTime"):
        paid_at = _year_of(params["traceTime"], parse_compact_time(params["txnTime"]))
    return PaymentResult(out_trade_no, params.get("queryId") or None, status, digits_to_fen(params["txnAmt"]), 0,
                         orig if status == "failed" else None, paid_at)


def refund_from(params: Mapping[str, str], out_trade_no: str, out_refund_no: str) -> RefundResult:
    """A query's answer about a refund (origRespCode), or a refund's own answer read as 'accepted'."""
    if params.get("orderId") != out_refund_no:
        raise WireError("the answer is about another refund")
    if params.get("txnType") not in ("04", "00"):  # as for a consume
        raise WireError(f"not a refund: txnType {params.get('txnType')!r}")
    orig = params.get("origRespCode", "")
    status = "succeeded" if orig in SUCCESS else "processing" if orig in UNKNOWN_CODES or not orig else "failed"
    return RefundResult(out_trade_no, out_refund_no, params.get("queryId") or None, status, digits_to_fen(params["txnAmt"]),
                        orig if status == "failed" else None)


def agreement_from(params: Mapping[str, str], out_agreement_no: str, limit_fen: int = 0) -> Agreement:
    """An open query's answer (or the open's notification): `activateStatus` 1 = opened; the token in tokenPayData.
    UnionPay carries no password-free limit: ``limit_fen`` is what we asked for, when we know it (else 0)."""
    if params.get("orderId") != out_agreement_no:
        raise WireError("the answer is about another opening")
    token = nested(params["tokenPayData"])["token"]
    active = params.get("activateStatus") == "1"
    return Agreement(out_agreement_no, token, "active" if active else "terminated", limit_fen)


# ---- notifications -----------------------------------------------------------------------------

def parse_notification(cfg: UnionPayConfig, body: bytes, now: datetime) -> Notification:
    try:
        params = parse_form(body)
    except (UnicodeDecodeError, ValueError):
        raise bad_signature(cfg.name, "notification (not a form)") from None
    if not verify(cfg, params, now) or params.get("merId") != cfg.mer_id:
        raise bad_signature(cfg.name, "notification")
    try:
        txn, code = params["txnType"], params["respCode"]
        ok = code in SUCCESS
        state = "succeeded" if ok else "processing" if code in UNKNOWN_CODES else "failed"  # 03/04/05: not decided yet
        data = {k: v for k, v in params.items() if k not in ("signature", "signPubKeyCert")}
        if txn == "01":
            paid_at = _year_of(params["traceTime"], parse_compact_time(params["txnTime"])) if ok and params.get("traceTime") else None
            return Notification(cfg.name, "payment", params["queryId"], state, out_trade_no=params["orderId"],
                                trade_no=params["queryId"], amount_fen=digits_to_fen(params["txnAmt"]), data=data, event_at=paid_at)
        if txn == "04":
            return Notification(cfg.name, "refund", params["queryId"], state,
                                out_trade_no=params.get("reqReserved") or None, out_refund_no=params["orderId"],
                                trade_no=params["queryId"], amount_fen=digits_to_fen(params["txnAmt"]), data=data)
        if txn in ("79", "74"):
            token = nested(params["tokenPayData"])["token"]
            opened = txn == "79" and ok and params.get("activateStatus", "1") == "1"
            return Notification(cfg.name, "agreement", f"{params['orderId']}:{params['txnTime']}", "active" if opened else "terminated",
                                data={**data, "subject": params["orderId"], "token": token})
    except (KeyError, ValueError) as exc:
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None
    raise bad_signature(cfg.name, f"notification of unknown txnType {params.get('txnType')!r}")


def ack(accepted: bool) -> Ack:
    # UnionPay takes HTTP 200 as received and resends otherwise (the demo answers "ok").
    return Ack(200, b"ok", "text/plain") if accepted else Ack(400, b"refused", "text/plain")


# ---- statements --------------------------------------------------------------------------------

# The ZM (一般交易明细) record: (name, width), fields separated by one space. Amounts are fen, zero-padded;
# fees and settlement amounts carry C (credit) or D (debit) before 12 digits.
ZM_FIELDS: tuple[tuple[str, int], ...] = (
    ("交易代码", 3), ("代理机构标识码", 11), ("发送机构标识码", 11), ("系统跟踪号", 6), ("交易传输时间", 10), ("帐号", 19),
    ("交易金额", 12), ("商户类别", 4), ("终端类型", 2), ("查询流水号", 21), ("支付方式旧", 2), ("商户订单号", 32), ("支付卡类型", 2),
    ("原始交易的系统跟踪号", 6), ("原始交易日期时间", 10), ("商户手续费", 13), ("结算金额", 13), ("支付方式", 4), ("集团商户代码", 15),
    ("交易类型", 2), ("交易子类", 2), ("业务类型", 6), ("帐号类型", 2), ("账单类型", 4), ("账单号码", 32), ("交互方式", 1),
    ("原交易查询流水号", 21), ("商户代码", 15),
)
ZM_WIDTH = sum(w for _, w in ZM_FIELDS) + len(ZM_FIELDS) - 1
CONSUME_CODE, REFUND_CODE = "S22", "S30"


def zm_record(values: Mapping[str, str]) -> str:
    """One fixed-width record (the sandbox writes them; tests write fixtures with it)."""
    out = []
    for name, width in ZM_FIELDS:
        value = values.get(name, "")
        if len(value) > width:
            raise WireError(f"{name} is wider than {width}: {value!r}")
        out.append(value.rjust(width, "0") if name == "交易金额" else value.ljust(width))
    return " ".join(out)


def zm_fields(line: str) -> dict[str, str]:
    if len(line) < ZM_WIDTH:
        raise WireError(f"a record of {len(line)} characters, shorter than {ZM_WIDTH}")
    out, pos = {}, 0
    for name, width in ZM_FIELDS:
        out[name] = line[pos:pos + width].strip()
        pos += width
        if pos < ZM_WIDTH and line[pos] != " ":
            raise WireError(f"no separator after {name}")
        pos += 1
    return out


def zip_file_content(files: Mapping[str, bytes]) -> str:
    """fileContent: base64 of the deflated ZIP (the SDK inflates, writes fileName, unzips)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return base64.b64encode(zlib.compress(raw.getvalue())).decode()


def unpack_file(content_b64: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zlib.decompress(base64.b64decode(content_b64, validate=True)))) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def zm_text(files: Mapping[str, bytes], mer_id: str) -> str:
    names = [n for n in files if "ZM_" in n and not n.split("ZM_")[0].endswith("E")]
    if len(names) != 1:
        raise WireError(f"expected one ZM file in the archive, found {sorted(files)}")
    return files[names[0]].decode("gbk")


def parse_statement(name: str, text: str, day: date, mer_id: str) -> Statement:
    """ZM records → trade and refund rows. The file has no summary line: the totals are the rows' own; every
    record must be whole, of our merchant, of a known code, its amounts digits — else the file is refused."""
    try:
        rows: list[StatementRow] = []
        trades_by_qid: dict[str, str] = {}
        near = datetime(day.year, day.month, day.day, 12, tzinfo=CHINA)
        for line in (ln.rstrip("\r") for ln in text.split("\n")):
            if not line.strip():
                continue
            f = zm_fields(line)
            if f["商户代码"] != mer_id:
                raise WireError(f"a record of merchant {f['商户代码']!r}")
            when = _year_of(f["交易传输时间"], near)
            amount = int(f["交易金额"]) if f["交易金额"].isdigit() else -1
            if amount <= 0:
                raise WireError(f"not an amount of fen: {f['交易金额']!r}")
            for fee_field in ("商户手续费", "结算金额"):
                if f[fee_field][:1] not in ("C", "D") or not f[fee_field][1:].isdigit():
                    raise WireError(f"{fee_field} is not C/D and digits: {f[fee_field]!r}")
            if f["交易代码"] == CONSUME_CODE:
                trades_by_qid[f["查询流水号"]] = f["商户订单号"]
                rows.append(StatementRow("trade", f["商户订单号"], f["查询流水号"], amount, when))
            elif f["交易代码"] == REFUND_CODE:
                rows.append(StatementRow("refund", f["原交易查询流水号"], f["原交易查询流水号"], amount, when,
                                         out_refund_no=f["商户订单号"], refund_id=f["查询流水号"]))
            else:
                raise WireError(f"unknown transaction code {f['交易代码']!r}")
        # A refund names its trade by the trade's queryId; the trade's order number when the trade is in this file too.
        rows = [StatementRow(r.kind, trades_by_qid.get(r.trade_no, ""), r.trade_no, r.amount_fen, r.at, r.out_refund_no, r.refund_id)
                if r.kind == "refund" else r for r in rows]
        trades = [r for r in rows if r.kind == "trade"]
        refunds = [r for r in rows if r.kind == "refund"]
        st = Statement(name, day, tuple(rows), len(trades), sum(r.amount_fen for r in trades), len(refunds),
                       sum(r.amount_fen for r in refunds))
    except (ValueError, IndexError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)


def trust_anchors(pem: str | bytes) -> tuple[x509.Certificate, x509.Certificate]:
    """UnionPay's middle and root certificates from one PEM bundle (the platform stores them as the institution's key)."""
    certs = x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem)
    roots = [c for c in certs if c.issuer == c.subject]
    middles = [c for c in certs if c.issuer != c.subject]
    if len(certs) != 2 or len(roots) != 1 or len(middles) != 1 or middles[0].issuer != roots[0].subject:
        raise ValueError("expected UnionPay's middle certificate and the root that issued it")
    try:
        middles[0].verify_directly_issued_by(roots[0])
        roots[0].verify_directly_issued_by(roots[0])
    except (InvalidSignature, TypeError) as exc:
        raise ValueError("the middle certificate is not signed by the root") from exc
    return middles[0], roots[0]


def anchors_pem(middle: x509.Certificate, root: x509.Certificate) -> str:
    return (middle.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)).decode()
