"""POST /fsi/api/rsfComIfsService/callService — the national interface envelope in, the envelope out.

Every answer is HTTP 200 with `infcode` 0 or -1, as national gateways answer (a HIS reads `infcode`, not the
status): a refusal — a bad signature, an old timestamp, a reused nonce, a malformed envelope, non-JSON, an
unknown `infno`, any service's refusal, even an unexpected fault — is `infcode -1` with `err_msg` naming the
field and the rule in Chinese and English. Never a traceback.

Order: the gateway headers (institution, time window, signature — a wrong one counted as a wrong credential,
access/credentials.py), then the body (at most MAX_BODY) and the envelope, then — in ONE unit — the nonce claimed,
the message id claimed (runtime/idempotency.py: the same msgid and input get the stored answer; another input under
it is refused), the sign-in checked and the transaction run. A refused (or faulted) request's nonce is claimed in a
unit of its own, so no request can be replayed later with the same headers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError, TooManyAttempts, Unauthorized, Unavailable, YibaoError
from yibao.formats import fsi as wire
from yibao.fsi import books_tx as _books  # noqa: F401 — registers reconciliation (3201, 3202)
from yibao.fsi import catalogue_tx, clearing_tx, codes  # noqa: F401 — catalogue_tx registers the 13xx and 9101/9102 handlers, clearing_tx 3203–3205A
from yibao.fsi import mobile_tx as _mobile  # noqa: F401 — registers the mobile payment transactions (6201–6401)
from yibao.fsi.transactions import FLOWS, HANDLERS, Call, OnceOnly
from yibao.runtime import idempotency
from yibao.runtime.clients import client_address
from yibao.runtime.platform import Platform
from yibao.services.access import credentials, gateway
from yibao.services.agency import gateway_credentials, institutions
from yibao.services.agency.gateway_credentials import GatewayCredential
from yibao.services.agency.institutions import Institution

log = logging.getLogger("yibao.fsi")

PATH = "/fsi/api/rsfComIfsService/callService"
CREDENTIAL_CACHE_S = 30  # a revoked or re-issued token takes effect within this
NO_SIGN_IN = ("9001",)  # every other transaction carries the sign_no 9001 answered
MAX_BODY = 16 * 1024 * 1024  # room for a 9101 upload of the largest file (5 MB, base64, then SM4 as hex: ~13.4 MB); more is
# refused unread [guess: no national figure found]


def _refused(field_: str, code: str, zh: str, en: str) -> Unauthorized:
    return Unauthorized(field_, code, zh, en)


@dataclass
class Gateway:
    platform: Platform
    window: timedelta
    _cache: dict[str, tuple[float, GatewayCredential, Institution]] = field(default_factory=dict)
    _public_keys: dict[str, Any] = field(default_factory=dict)
    _passed: dict[tuple[str, str | None], float] = field(default_factory=dict)  # (paasid, address) → until when it passes unqueried

    async def credential(self, paasid: str) -> tuple[GatewayCredential, Institution] | None:
        cached = self._cache.get(paasid)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        p = self.platform

        def read(conn: Connection) -> tuple[GatewayCredential, Institution | None] | None:
            cred = gateway_credentials.active(conn, p.keyring, paasid)
            return (cred, institutions.get(conn, paasid)) if cred is not None else None
        found = await p.run(read, write=False)
        if found is None or found[1] is None:
            return None
        self._cache[paasid] = (time.monotonic() + CREDENTIAL_CACHE_S, found[0], found[1])
        return found[0], found[1]

    async def counted(self, paasid: str, address: str | None, now: datetime, found: tuple[GatewayCredential, Institution] | None,
                      valid: bool) -> None:
        """The signature's verdict, counted as a credential's (access/credentials.py): a wrong one — or a paasid with no
        token — counts and is refused; too many refuse the right one too. A right one from an address where this
        institution's signature passed within CREDENTIAL_CACHE_S is let through without a query (as the REST path
        remembers a credential that worked)."""
        passed = (paasid, address)
        if valid and self._passed.get(passed, 0.0) > time.monotonic():
            return
        if found is None:
            refusal = _refused(wire.HEADER_PAASID, "unknown_paasid", "x-tif-paasid 不是已开通国家接口的定点机构",
                               "x-tif-paasid is no institution admitted to the gateway")
        else:
            refusal = _refused(wire.HEADER_SIGNATURE, "bad_signature", "x-tif-signature 签名不正确（SHA256(时间戳+令牌+随机数+时间戳)）",
                               "the signature does not match SHA256(timestamp + token + nonce + timestamp)")
        p, region = self.platform, found[1].region if found else None
        verdict = await p.run(lambda c: credentials.gateway_signature(c, p.keyring, now, code=paasid, region=region, valid=valid,
                                                                      address=address, refusal=refusal))
        if verdict is not None:
            raise verdict  # after its count committed
        self._passed[passed] = time.monotonic() + CREDENTIAL_CACHE_S

    def public_key(self, cred: GatewayCredential) -> Any:
        """The institution's SM2 public key, parsed once and kept (a kept key verifies faster: yibao.crypto.gm)."""
        if cred.sm2_public is None:
            return None
        key = self._public_keys.get(cred.sm2_public)
        if key is None:
            from yibao.crypto import gm

            key = self._public_keys[cred.sm2_public] = gm.Sm2PublicKey.from_hex(cred.sm2_public)
        return key

    async def authenticate(self, request: Request, now: datetime) -> tuple[GatewayCredential, Institution, str]:
        """The institution the gateway headers name, if they are right; the nonce is claimed with the message's unit
        (one unit on the happy path), or — when the request is refused — in its own, so that no refused request can be
        replayed later."""
        h = request.headers
        values = {}
        for name in (wire.HEADER_PAASID, wire.HEADER_TIMESTAMP, wire.HEADER_NONCE, wire.HEADER_SIGNATURE):
            value = h.get(name, "")
            if not value or len(value) > 100:
                raise _refused(name, "missing_header", f"缺少网关认证头 {name}", f"the gateway header {name} is missing")
            values[name] = value
        stamp = values[wire.HEADER_TIMESTAMP]
        if not (stamp.isascii() and stamp.isdigit()):  # "²" is a digit to str.isdigit, not to int()
            raise _refused(wire.HEADER_TIMESTAMP, "invalid_timestamp", "x-tif-timestamp 应为秒级 Unix 时间戳", "must be a Unix time in seconds")
        if abs(int(stamp) - now.timestamp()) > self.window.total_seconds():
            raise _refused(wire.HEADER_TIMESTAMP, "timestamp_outside_window",
                           f"x-tif-timestamp 与平台时间相差超过 {int(self.window.total_seconds())} 秒（请校准时钟）",
                           f"the timestamp is more than {int(self.window.total_seconds())} s from the platform's clock")
        nonce = values[wire.HEADER_NONCE]
        if len(nonce) > 64:
            raise _refused(wire.HEADER_NONCE, "invalid_nonce", "x-tif-nonce 不超过64个字符", "must be at most 64 characters")
        paasid = values[wire.HEADER_PAASID]
        found = await self.credential(paasid)
        valid = found is not None and wire.signature_ok(stamp, found[0].token, nonce, values[wire.HEADER_SIGNATURE])
        await self.counted(paasid, client_address(request), now, found, valid)
        assert found is not None
        return found[0], found[1], nonce

    def claim(self, inst: Institution, nonce: str, now: datetime) -> Callable[[Connection], None]:
        """The nonce's claim, as a unit or the first step of one (expired nonces dropped on one request in 64)."""
        purge = secrets.randbelow(64) == 0
        return lambda conn: gateway.claim_nonce(conn, now, institution_id=inst.id, region=inst.region, nonce=nonce, window=self.window,
                                                purge=purge)


def _too_large() -> InputError:
    return InputError("body", "body_too_large", f"报文过大（不超过 {MAX_BODY // 1024 // 1024} MB）", f"the body is too large (at most {MAX_BODY // 1024 // 1024} MB)")


async def _body(request: Request) -> bytes:
    """The body, read only up to MAX_BODY: a declared length beyond it is refused before reading, a stream when it passes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _envelope(body: bytes, inst: Institution) -> dict[str, Any]:
    if b"\\u0000" in body:  # PostgreSQL text cannot hold NUL: refused here, not answered by a failed statement
        raise InputError("body", "nul_character", "报文不能包含空字符（\\u0000）", "must not contain the NUL character (\\u0000)")
    try:
        env = wire.loads(body)
    except wire.TooDeep:
        raise _too_deep("body") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError("body", "invalid_json", "报文不是有效的 JSON", "the body is not valid JSON") from None
    if not isinstance(env, dict):
        raise InputError("body", "invalid_envelope", "报文应为 JSON 对象", "the envelope must be a JSON object")
    for key in wire.REQUIRED:
        if env.get(key) in (None, ""):
            raise InputError(key, "required", "缺少必填字段", "is required")
    for key in wire.REQUEST_FIELDS:
        if key != "input" and env.get(key) is not None and not isinstance(env.get(key), str):
            raise InputError(key, "invalid_text", "应为字符串", "must be a string")
    unknown = sorted(set(env) - set(wire.REQUEST_FIELDS) - set(wire.OPTIONAL))
    if unknown:
        raise InputError(unknown[0], "unknown_field", "未知字段", "is not a field of the envelope")
    if env["fixmedins_code"] != inst.id:
        raise InputError("fixmedins_code", "not_the_caller", "定点机构编号与网关认证的机构（x-tif-paasid）不符",
                         "is not the institution the gateway headers authenticate")
    problem = wire.msgid_problem(env["msgid"], inst.id)
    if problem:
        raise InputError("msgid", "invalid_msgid", *problem)
    if wire.parse_inf_time(env["inf_time"]) is None:
        raise InputError("inf_time", "invalid_time", "交易时间应为 yyyy-MM-dd HH:mm:ss", "must be yyyy-MM-dd HH:mm:ss")
    if env["mdtrtarea_admvs"] != inst.region:
        raise InputError("mdtrtarea_admvs", "not_the_region", f"就医地医保区划应为本机构所在统筹区 {inst.region}",
                         f"must be the institution's pooling region {inst.region}")
    if env["opter_type"] not in ("1", "2", "3"):
        raise InputError("opter_type", "invalid_choice", "经办人类别应为 1（经办人）、2（自助终端）或 3（移动终端）",
                         "must be 1 (operator), 2 (self-service terminal) or 3 (mobile terminal)")
    if env["infno"] not in HANDLERS and env["infno"] not in FLOWS:
        raise InputError("infno", "unknown_infno", f"不支持的交易编号 {str(env['infno'])[:10]}", "is not a transaction this gateway offers")
    return env


def _too_deep(field_: str) -> InputError:
    return InputError(field_, "too_deep", f"JSON 嵌套层数超过 {wire.MAX_DEPTH} 层", f"the JSON is nested deeper than {wire.MAX_DEPTH} levels")


def _open_input(env: dict[str, Any], cred: GatewayCredential, public: Any) -> dict[str, Any]:
    raw = env["input"]
    if cred.sm4_key is not None:
        raw = _decrypt(raw, env, cred, public)
    if not isinstance(raw, dict):
        raise InputError("input", "invalid_object", "交易输入应为 JSON 对象", "must be a JSON object")
    return raw


def _decrypt(raw: Any, env: dict[str, Any], cred: GatewayCredential, public: Any) -> Any:
    """The input's plaintext, once its SM4 decryption and the institution's SM2 signature over it both hold. Either
    failing is answered the same way (docs/fsi-crypto.md: the padding check must not become an oracle)."""
    from yibao.crypto import gm

    if not isinstance(raw, dict) or not isinstance(raw.get("encData"), str):
        raise InputError("input", "encryption_required", "本机构已开通加密：input 应为 {\"encData\": SM4 密文十六进制}",
                         "this institution sends encrypted input: {\"encData\": hex of the SM4 ciphertext}")
    try:
        plain = gm.sm4_decrypt(cred.sm4_key, bytes.fromhex(raw["encData"]))
        sealed = env.get("signtype") == wire.SIGNTYPE_SM2 and gm.sm2_verify(public, plain, bytes.fromhex(env.get("cainfo") or ""))
    except (ValueError, gm.GmError):
        sealed = False
    if not sealed:
        raise Unauthorized("input", "bad_seal", "input 不能用本机构的 SM4 密钥解密，或 cainfo 不是本机构对其明文的 SM3withSM2 签名",
                           "input does not decrypt under the institution's SM4 key, or cainfo is not its SM3withSM2 signature of the plaintext")
    if b"\\u0000" in plain or b"\x00" in plain:  # as the plain body (_envelope): PostgreSQL text cannot hold NUL
        raise InputError("input", "nul_character", "解密后的 input 不能包含空字符（\\u0000）", "the decrypted input must not contain the NUL character (\\u0000)")
    try:
        return wire.loads(plain)
    except wire.TooDeep:
        raise _too_deep("input") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError("input", "invalid_json", "解密后的 input 不是有效的 JSON", "the decrypted input is not valid JSON") from None


def _answer(infcode: int, received: datetime, now: datetime, region: str, *, output: Any = None, err_msg: str = "") -> dict[str, Any]:
    return {"infcode": infcode, "inf_refmsgid": f"{region}{wire.beijing(now):%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}",
            "refmsg_time": wire.stamp_ms(received), "respond_time": wire.stamp_ms(now), "err_msg": err_msg, "warn_msg": "",
            "cainfo": "", "signtype": "", "output": output if output is not None else {}}


def _reused() -> Conflict:
    return Conflict("msgid", "msgid_reused", "该报文ID已用于另一笔不同内容的交易", "this msgid was already used for a different request")


def install(app: FastAPI, window: timedelta | None = None) -> None:
    """Mount the gateway on the app the composition root builds."""
    seconds = float(os.environ.get("YIBAO_FSI_WINDOW", "300")) if window is None else window.total_seconds()
    gw = Gateway(app.state.platform, timedelta(seconds=seconds))
    app.state.fsi_gateway = gw

    async def call_service(request: Request) -> Response:
        p = gw.platform
        received = p.now()
        region, cred, claim = "000000", None, None
        env: dict[str, Any] | None = None
        try:
            cred, inst, nonce = await gw.authenticate(request, received)  # the headers first: nobody unknown gets the body read
            region, claim = inst.region, gw.claim(inst, nonce, received)
            env = _envelope(await _body(request), inst)
            payload = _open_input(env, cred, gw.public_key(cred))
            text = await _run(p, env, payload, inst, received, claim)
        except YibaoError as exc:
            if claim is not None and exc.code != "nonce_reused":
                try:
                    await p.run(claim)  # refused, the nonce still counts as used
                except YibaoError:
                    pass  # used meanwhile: a replay, refused all the same
            text = wire.dumps(_answer(-1, received, p.now(), region, err_msg=codes.err_msg(exc)))
        except Exception:  # noqa: BLE001 — the national practice: an answer, never a traceback
            rid = secrets.token_hex(8)
            log.exception("fsi: unexpected fault, reference %s", rid)
            if claim is not None:
                try:
                    await p.run(claim)  # spent as a refused request's: replayed once the fault is fixed, it must not run
                except YibaoError:
                    pass  # used meanwhile: a replay
                except Exception:  # noqa: BLE001 — the answer below is owed whatever the claim met
                    log.exception("fsi: the nonce of the faulted request %s was not claimed", rid)
            text = wire.dumps(_answer(-1, received, p.now(), region, err_msg=f"系统内部错误，请凭编号 {rid} 联系经办机构（internal error; "
                                                                             f"quote {rid} to the agency）[internal_error]"))
        if cred is not None and cred.sm4_key is not None:
            text = _seal(text, cred, p)
        return Response(text.encode("utf-8"), status_code=200, media_type="application/json")

    # A plain route: the REST API's app-wide dependencies and error handlers (HTTP statuses) are not the envelope's.
    app.add_route(PATH, call_service, methods=["POST"], include_in_schema=False)


async def _run(p: Platform, env: dict[str, Any], payload: dict[str, Any], inst: Institution, received: datetime,
               claim: Callable[[Connection], None]) -> str:
    infno, msgid = env["infno"], env["msgid"]
    if infno in FLOWS:
        return await _run_flow(p, env, payload, inst, received, claim)
    key = _key(env, payload, inst)
    handler = HANDLERS[infno]
    call = Call(infno, msgid, inst, p.keyring, received, payload, env)
    fresh: dict[str, str] = {}

    def work(conn):  # noqa: ANN001, ANN202
        _check_signed_in(conn, env, inst)
        out = handler(call, conn)
        if isinstance(out, YibaoError):  # a refusal that counted: it commits, and is answered the same way again
            return 200, wire.dumps(_answer(-1, received, p.now(), inst.region, err_msg=codes.err_msg(out)))
        if isinstance(out, OnceOnly):  # a secret answered now; the record (and a replay) keeps the output without it
            answer = _answer(0, received, p.now(), inst.region, output=out.output)
            fresh["body"] = wire.dumps(answer)
            return 200, wire.dumps({**answer, "output": out.stored})
        return 200, wire.dumps(_answer(0, received, p.now(), inst.region, output=out))

    once = idempotency.once(key, received, work)

    def unit(conn: Connection) -> idempotency.Answer:
        fresh.clear()  # a unit re-run (a transient conflict) answers what its last run did
        claim(conn)  # the nonce first: a replay of a message already answered is refused too, not replayed
        return once(conn)
    answer = await p.run(unit)
    return answer.body if answer.replayed else fresh.get("body", answer.body)


def _key(env: dict[str, Any], payload: dict[str, Any], inst: Institution) -> idempotency.Key:
    digest = hashlib.sha256(f"{env['infno']}\n{wire.canonical(payload)}".encode()).hexdigest()
    return idempotency.Key(f"fsi:{inst.id}", env["msgid"], digest, inst.region, _reused)  # a twin still running is waited for


def _check_signed_in(conn: Connection, env: dict[str, Any], inst: Institution) -> None:
    if env["infno"] not in NO_SIGN_IN and not gateway.signed_in(conn, institution_id=inst.id, sign_no=str(env.get("sign_no") or "")):
        raise Unauthorized("sign_no", "not_signed_in", "签到编号无效或已签退，请先签到（9001）", "no such sign-in, or signed out: sign in first (9001)")


async def _run_flow(p: Platform, env: dict[str, Any], payload: dict[str, Any], inst: Institution, received: datetime,
                    claim: Callable[[Connection], None]) -> str:
    """A transaction that calls a payment institution (transactions.FLOWS): the REST API's shape for a payment
    (api/idempotency.py idempotent_flow). One unit claims the nonce, checks the sign-in and claims the msgid for this
    input (a final answer replayed; another input under it refused at once, before any money moves); then the flow runs
    its own units with the call between them, never inside one; its answer is kept once final — an answer still in
    progress is not, so the same msgid and input again resume and answer as things then stand. A refusal is kept like
    an answer, except one that says when to try again."""
    key = _key(env, payload, inst)
    now = p.now()

    def first(conn: Connection) -> idempotency.Answer | None:
        claim(conn)
        _check_signed_in(conn, env, inst)
        return idempotency.claim_or_resume(key, now)(conn)
    stored = await p.run(first)
    if stored is not None:
        return stored.body
    call = Call(env["infno"], env["msgid"], inst, p.keyring, received, payload, env)
    try:
        out, keep = await FLOWS[env["infno"]](call, p.context)
    except (TooManyAttempts, Unavailable):
        raise
    except YibaoError as exc:
        out, keep = exc, True
    if isinstance(out, YibaoError):
        text = wire.dumps(_answer(-1, received, p.now(), inst.region, err_msg=codes.err_msg(out)))
    else:
        text = wire.dumps(_answer(0, received, p.now(), inst.region, output=out))
    if not keep:
        return text
    await p.run(idempotency.record(key, 200, text))
    return text


def _seal(text: str, cred: GatewayCredential, p: Platform) -> str:
    """The encrypted mode's answer: `output` SM4-encrypted under the institution's key, `cainfo` the platform's SM2
    signature of the plaintext output."""
    from yibao.crypto import gm
    from yibao.fsi.keys import platform_key

    answer = wire.loads(text)
    plain = wire.dumps(answer.get("output", {})).encode("utf-8")
    answer["output"] = {"encData": gm.sm4_encrypt(cred.sm4_key, plain).hex()}
    answer["cainfo"], answer["signtype"] = gm.sm2_sign(platform_key(p.keyring), plain).hex(), wire.SIGNTYPE_SM2
    return wire.dumps(answer)
