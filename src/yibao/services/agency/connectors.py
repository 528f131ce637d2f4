"""The channel registry: how the platform reaches each admitted payment institution.

One row per payment institution (`channel_configs`): the connector kind (wxpay | alipay | unionpay |
bank), its base URL, our merchant identity, our private key and shared secret (AES-GCM under the PII
keyring, never stored in clear), the institution's public key, the notify URL we give it, a timeout.
`configure` is the one write path (admin API, demo start-up, tests); `Connectors` builds the `Channel`
for a payment institution — a credit bank is one too — and keeps it per config version, so keys are
parsed once, not per payment.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.bank.connector import BankChannel
from yibao.channels.base import Channel
from yibao.channels.crypto import key_serial, load_private_key, load_public_key, private_pem, public_pem
from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import channel_configs as CC

CONNECTORS = ("wxpay", "alipay", "unionpay", "bank")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_MERCHANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PUB_KEY_ID = re.compile(r"^PUB_KEY_ID_[0-9A-Za-z]{1,53}$")
CERTIFICATE_MODES = ("public_key", "certificates", "both")


@dataclass(frozen=True)
class ChannelConfig:
    payment_institution_id: str
    region: str
    connector: str
    base_url: str
    merchant_id: str
    app_id: str | None
    private_key_enc: bytes | None
    shared_secret_enc: bytes | None
    institution_public_key: str | None
    notify_url: str | None
    timeout_ms: int
    version: int
    updated_at: datetime
    platform_key_id: str | None = None  # wxpay: the platform public key's id (PUB_KEY_ID_…)
    certificate_mode: str | None = None  # wxpay: public_key | certificates | both
    plan_id: int | None = None  # wxpay: the papay template the contracts are signed under
    deduct_notice: bool | None = None  # wxpay: the template requires a 预扣费通知 before each deduction (None elsewhere)


def _row(r: Any) -> ChannelConfig:
    return ChannelConfig(r.payment_institution_id, r.region, r.connector, r.base_url, r.merchant_id, r.app_id,
                         None if r.private_key_enc is None else bytes(r.private_key_enc),
                         None if r.shared_secret_enc is None else bytes(r.shared_secret_enc), r.institution_public_key, r.notify_url,
                         int(r.timeout_ms), int(r.version), r.updated_at, r.platform_key_id, r.certificate_mode,
                         None if r.plan_id is None else int(r.plan_id), None if r.deduct_notice is None else bool(r.deduct_notice))


# Read for every payment and every notification: prepared SQL (store/sql.py), not Core (~100 µs).
_GET = Sql("""SELECT payment_institution_id, region, connector, base_url, merchant_id, app_id, private_key_enc, shared_secret_enc,
              institution_public_key, notify_url, timeout_ms, version, updated_at, platform_key_id, certificate_mode, plan_id,
              deduct_notice FROM channel_configs WHERE payment_institution_id = :id""")


def get(conn: Connection, pi_id: str) -> ChannelConfig | None:
    r = _GET(conn, {"id": pi_id}).first()
    return _row(r._replace(updated_at=as_datetime(r.updated_at))) if r else None


_VERSION = Sql("SELECT version FROM channel_configs WHERE payment_institution_id = :id")


def version_of(conn: Connection, pi_id: str) -> int | None:
    """The configuration's version (None: not configured): whether a connector built before is still current."""
    r = _VERSION(conn, {"id": pi_id}).first()
    return int(r.version) if r else None


def require(conn: Connection, pi_id: str) -> ChannelConfig:
    cfg = get(conn, pi_id)
    if cfg is None:
        raise Conflict("payment_institution_id", "channel_not_configured", "该支付机构尚未配置接入参数",
                       "this payment institution has no channel configuration yet")
    return cfg


def _url(value: str | None, field: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise InputError(field, "required", "缺少地址", "is required")
        return None
    if len(value) > 300 or not _URL.match(value):
        raise InputError(field, "invalid_url", "应为 http(s):// 开头的地址，至多300个字符", "must be an http(s):// URL of at most 300 characters")
    return value.rstrip("/")


def configure(conn: Connection, keyring: Keyring, now: datetime, *, pi_id: str, connector: str, base_url: str, merchant_id: str,
              app_id: str | None = None, private_key_pem: str | None = None, shared_secret: bytes | None = None,
              institution_public_key_pem: str | None = None, notify_url: str | None = None, timeout_ms: int = 5000,
              platform_key_id: str | None = None, certificate_mode: str | None = None, plan_id: int | None = None,
              deduct_notice: bool | None = None, actor: str) -> dict[str, Any]:
    """Create or replace the institution's channel configuration (an admitted institution only).

    WeChat Pay (wxpay) only: ``certificate_mode`` says how its answers and notifications are identified —
    ``public_key`` (the platform public key, named by ``platform_key_id``, the `PUB_KEY_ID_…` WeChat assigned it),
    ``certificates`` (platform certificates downloaded from /v3/certificates; no public key needed) or ``both``
    (during WeChat's migration from one to the other) — and ``plan_id`` the papay template the contracts are
    signed under, and ``deduct_notice`` whether that template requires the 预扣费通知 (pre-deduction notice) before each
    deduction — the connector then sends it first (docs/channels.md). Defaults: ``public_key``, the key chosen by any id
    when none is given, and the notice sent (WeChat's templates for recurring deductions require it; a template that
    does not can turn it off)."""
    pi = pis.get(conn, pi_id, lock=True)
    if pi is None:
        raise NotFound("payment_institution_id", "not_found", "支付机构不存在", "payment institution not found")
    if pi.status not in ("admitted", "registered"):  # registered: configured, then tested at its admission (agency.admission)
        raise Conflict("payment_institution_id", "not_admitted", "该支付机构未准入或已暂停", "this payment institution is not admitted")
    if connector not in CONNECTORS:
        raise InputError("connector", "invalid_choice", "接入类型应为 wxpay | alipay | unionpay | bank", "must be wxpay, alipay, unionpay or bank")
    base = _url(base_url, "base_url", required=True)
    notify = _url(notify_url, "notify_url", required=False)
    if not _MERCHANT.match(merchant_id or ""):
        raise InputError("merchant_id", "invalid_text", "商户号应为1–64位字母、数字、_ . -", "must be 1–64 letters, digits, _ . or -")
    if app_id is not None and not _MERCHANT.match(app_id):
        raise InputError("app_id", "invalid_text", "应用ID应为1–64位字母、数字、_ . -", "must be 1–64 letters, digits, _ . or -")
    if not 100 <= timeout_ms <= 60_000:
        raise InputError("timeout_ms", "out_of_range", "超时应在100–60000毫秒之间", "must be 100–60000 ms")
    key_id, mode, plan = _wxpay_identification(connector, platform_key_id, certificate_mode, plan_id)
    notice = _wxpay_deduct_notice(connector, deduct_notice)
    needs_keys = connector != "bank"
    needs_secret = connector in ("wxpay", "bank")
    key_enc = pub = secret_enc = None
    if needs_keys:
        try:
            key_enc = keyring.encrypt(private_pem(load_private_key(private_key_pem or "")).decode(), "channel private key")
        except (ValueError, TypeError):
            raise InputError("private_key_pem", "invalid_key", "应为 PEM 格式的 RSA 私钥", "must be an RSA private key in PEM") from None
        try:
            if connector == "unionpay":  # UnionPay: its middle and root certificates (answers carry the signing certificate)
                from yibao.channels.unionpay import transformers as unionpay_tx

                pub = unionpay_tx.anchors_pem(*unionpay_tx.trust_anchors(institution_public_key_pem or ""))
            elif mode == "certificates" and not institution_public_key_pem:
                pub = None  # WeChat's keys come from its downloaded platform certificates
            else:
                pub = public_pem(load_public_key(institution_public_key_pem or "")).decode()
        except (ValueError, TypeError):
            raise InputError("institution_public_key_pem", "invalid_key", "应为 PEM 格式的 RSA 公钥（银联：中级与根证书）",
                             "must be an RSA public key in PEM (UnionPay: its middle and root certificates)") from None
    if needs_secret:
        if not isinstance(shared_secret, bytes) or len(shared_secret) != 32:
            raise InputError("shared_secret", "invalid_secret", "共享密钥应为32字节（base64）", "must be 32 bytes (base64)")
        secret_enc = keyring.encrypt(base64.b64encode(shared_secret).decode(), "channel shared secret")
    if connector == "wxpay" and not app_id:
        raise InputError("app_id", "required", "微信类接入须填写 app_id", "a wxpay connector needs app_id")
    values = dict(region=pi.region, connector=connector, base_url=base, merchant_id=merchant_id, app_id=app_id, private_key_enc=key_enc,
                  shared_secret_enc=secret_enc, institution_public_key=pub, notify_url=notify, timeout_ms=timeout_ms, updated_at=now,
                  platform_key_id=key_id, certificate_mode=mode, plan_id=plan, deduct_notice=notice)
    existing = get(conn, pi_id)
    if existing is None:
        conn.execute(CC.insert().values(payment_institution_id=pi_id, version=1, created_at=now, **values))
    else:
        conn.execute(update(CC).where(CC.c.payment_institution_id == pi_id).values(version=existing.version + 1, **values))
    cfg = get(conn, pi_id)
    assert cfg is not None
    audit.append(conn, region=pi.region, actor=actor, action="channel.configure", subject=pi_id,
                 detail={"connector": connector, "base_url": base, "merchant_id": merchant_id, "version": cfg.version,
                         "institution_key": _serial(pub)}, now=now)
    return view(cfg)


def _wxpay_identification(connector: str, key_id: str | None, mode: str | None, plan_id: int | None) -> tuple[str | None, str | None, int | None]:
    """WeChat Pay's identification fields, checked by field; for any other connector each must be absent."""
    if connector != "wxpay":
        for name, value in (("platform_key_id", key_id), ("certificate_mode", mode), ("plan_id", plan_id)):
            if value is not None:
                raise InputError(name, "not_applicable", "仅微信支付（wxpay）接入可填写此项", "only a wxpay connector takes this field")
        return None, None, None
    mode = mode or "public_key"
    if mode not in CERTIFICATE_MODES:
        raise InputError("certificate_mode", "invalid_choice", "证书模式应为 public_key | certificates | both",
                         "must be public_key, certificates or both")
    if key_id is not None and not _PUB_KEY_ID.match(key_id):
        raise InputError("platform_key_id", "invalid_text", "微信支付公钥ID应为 PUB_KEY_ID_ 加字母或数字，至多64个字符",
                         "must be PUB_KEY_ID_ followed by letters or digits, at most 64 characters")
    if key_id is not None and mode == "certificates":
        raise InputError("platform_key_id", "not_applicable", "平台证书模式不使用微信支付公钥ID",
                         "certificate_mode certificates uses no platform public key id")
    if plan_id is not None and (isinstance(plan_id, bool) or not isinstance(plan_id, int) or not 0 < plan_id < 2**31):
        raise InputError("plan_id", "out_of_range", "委托代扣模板ID应为正整数", "must be a positive integer")
    return key_id, mode, plan_id


def _wxpay_deduct_notice(connector: str, value: bool | None) -> bool | None:
    """Whether WeChat's template requires the 预扣费通知: yes unless said otherwise; any other connector takes none."""
    if connector != "wxpay":
        if value is not None:
            raise InputError("deduct_notice", "not_applicable", "仅微信支付（wxpay）接入可填写此项", "only a wxpay connector takes this field")
        return None
    if value is None:
        return True
    if not isinstance(value, bool):
        raise InputError("deduct_notice", "invalid_choice", "预扣费通知应为 true 或 false", "must be true or false")
    return value


def _serial(pem: str | None) -> str | None:
    """The institution key's serial; for UnionPay's certificate bundle, its middle certificate's key."""
    if not pem:
        return None
    if "CERTIFICATE" in pem:
        from yibao.channels.unionpay import transformers as unionpay_tx

        middle, _ = unionpay_tx.trust_anchors(pem)
        return key_serial(middle.public_key())  # type: ignore[arg-type]
    return key_serial(load_public_key(pem))


def view(cfg: ChannelConfig) -> dict[str, Any]:
    """What an operator sees: never a key or secret, only the institution key's serial."""
    return {"payment_institution_id": cfg.payment_institution_id, "region": cfg.region, "connector": cfg.connector,
            "base_url": cfg.base_url, "merchant_id": cfg.merchant_id, "app_id": cfg.app_id, "notify_url": cfg.notify_url,
            "timeout_ms": cfg.timeout_ms, "version": cfg.version, "has_private_key": cfg.private_key_enc is not None,
            "has_shared_secret": cfg.shared_secret_enc is not None,
            "institution_key_serial": _serial(cfg.institution_public_key),
            **({"platform_key_id": cfg.platform_key_id, "certificate_mode": cfg.certificate_mode, "plan_id": cfg.plan_id,
                "deduct_notice": cfg.deduct_notice is not False}
               if cfg.connector == "wxpay" else {}),
            "updated_at": iso_utc(cfg.updated_at)}


def build(cfg: ChannelConfig, keyring: Keyring, *, transport: httpx.AsyncBaseTransport | None = None) -> Channel:
    """The connector for one configuration (keys decrypted here, kept only in the connector)."""
    key = load_private_key(keyring.decrypt(cfg.private_key_enc, "channel private key")) if cfg.private_key_enc else None
    certs = cfg.institution_public_key is not None and "CERTIFICATE" in cfg.institution_public_key
    pub = load_public_key(cfg.institution_public_key) if cfg.institution_public_key and not certs else None
    secret = base64.b64decode(keyring.decrypt(cfg.shared_secret_enc, "channel shared secret")) if cfg.shared_secret_enc else b""
    timeout = cfg.timeout_ms / 1000
    if cfg.connector == "wxpay":
        from yibao.channels.wxpay import connector as wxpay

        assert key is not None
        mode = cfg.certificate_mode or "public_key"
        serial = cfg.platform_key_id or (key_serial(pub) if pub is not None else "")
        return wxpay.WxPayChannel(wxpay.WxPayConfig(
            cfg.base_url, cfg.merchant_id, cfg.app_id or "", key_serial(key), key, serial, pub if mode != "certificates" else None, secret,
            cfg.notify_url, timeout, plan_id=cfg.plan_id if cfg.plan_id is not None else wxpay.tx.DEFAULT_PLAN_ID,
            platform_certificates=mode != "public_key", deduct_notice=cfg.deduct_notice is not False), transport=transport)
    if cfg.connector == "alipay":
        from yibao.channels.alipay import connector as alipay

        assert key is not None
        return alipay.AlipayChannel(alipay.AlipayConfig(cfg.base_url, cfg.merchant_id, key, pub, cfg.notify_url, timeout), transport=transport)
    if cfg.connector == "unionpay":
        from yibao.channels.unionpay import connector as unionpay

        assert key is not None and cfg.institution_public_key is not None
        middle, root = unionpay.tx.trust_anchors(cfg.institution_public_key)
        return unionpay.UnionPayChannel(unionpay.UnionPayConfig(cfg.base_url, cfg.merchant_id, unionpay.tx.cert_id_of(key), key, root, middle,
                                                                cfg.notify_url, timeout), transport=transport)
    from yibao.channels.bank import connector as bank

    return bank.BankChannel(bank.BankConfig(cfg.base_url, cfg.merchant_id, secret, cfg.notify_url, timeout), transport=transport)


class Connectors:
    """The one registry of connectors: every admitted payment institution, credit banks included, is
    reached through its configuration (`configure`), built once per config version in this process.

    ``transport`` (an httpx transport) is handed to every connector built: tests record the wire with it.
    ``overrides`` (payment_institution_id → connector) replaces an institution's configured connector for
    this process: `yibao credit overdue --bank ID=URL` reaches a bank run on its own that way.
    """

    def __init__(self, keyring: Keyring, transport: httpx.AsyncBaseTransport | None = None,
                 overrides: Mapping[str, Channel] | None = None) -> None:
        self.keyring = keyring
        self.transport = transport
        self.overrides = dict(overrides or {})
        self._built: dict[str, tuple[ChannelConfig, int, Channel]] = {}
        self._lock = threading.Lock()

    def get(self, cfg: ChannelConfig) -> Channel:
        marker = id(self.transport)
        with self._lock:
            hit = self._built.get(cfg.payment_institution_id)
            if hit is not None and hit[0].version == cfg.version and hit[1] == marker:
                return hit[2]
        channel = build(cfg, self.keyring, transport=self.transport)
        with self._lock:
            self._built[cfg.payment_institution_id] = (cfg, marker, channel)
        return channel

    def last_built(self, pi_id: str) -> tuple[ChannelConfig, Channel] | None:
        """The connector this process last built for the institution, with its configuration — possibly stale: a
        caller checks ``cfg.version`` (`version_of`) in the unit that acts on what the connector verified."""
        with self._lock:
            hit = self._built.get(pi_id)
        return (hit[0], hit[2]) if hit is not None and hit[1] == id(self.transport) else None

    async def channel(self, run: Callable[..., Awaitable[Any]], pi_id: str) -> Channel:
        """The institution's connector, its configuration read in a unit of ``run``'s."""
        if pi_id in self.overrides:
            return self.overrides[pi_id]
        return self.get(await run(lambda c: require(c, pi_id), write=False))

    async def bank(self, run: Callable[..., Awaitable[Any]], pi_id: str) -> BankChannel:
        """A credit bank's connector: an institution configured with the bank connector, or refused."""
        found = self.overrides.get(pi_id)
        if isinstance(found, BankChannel):
            return found
        cfg = await run(lambda c: get(c, pi_id), write=False)
        if cfg is None or cfg.connector != "bank":
            raise NotFound("payment_institution_id", "bank_not_connected", "平台未接入该银行的信用支付",
                           "the platform has no credit connection to this bank")
        channel = self.get(cfg)
        assert isinstance(channel, BankChannel)
        return channel


def is_configured(conn: Connection, pi_id: str) -> bool:
    """Whether the platform has a connector for the institution (tested when it was admitted)."""
    return version_of(conn, pi_id) is not None


def connected_banks(conn: Connection) -> set[str]:
    """The payment institutions the platform reaches as credit banks (configured with the bank connector)."""
    return set(conn.execute(select(CC.c.payment_institution_id).where(CC.c.connector == "bank")).scalars())


def settings_of(channel: Any) -> dict[str, Any]:
    """The `configure` arguments that reproduce a built connector (for the demo's and the tests' sandboxes)."""
    c = channel.config
    name = c.name
    common = {"connector": name, "base_url": c.base_url, "notify_url": c.notify_url, "timeout_ms": int(c.timeout * 1000)}
    if name == "wxpay":
        mode = ("both" if c.platform_key is not None else "certificates") if c.platform_certificates else "public_key"
        return {**common, "merchant_id": c.mchid, "app_id": c.appid, "private_key_pem": private_pem(c.merchant_key).decode(),
                "institution_public_key_pem": None if c.platform_key is None else public_pem(c.platform_key).decode(),
                "shared_secret": c.api_v3_key, "certificate_mode": mode, "plan_id": c.plan_id, "deduct_notice": c.deduct_notice,
                "platform_key_id": c.platform_serial if c.platform_serial.startswith("PUB_KEY_ID_") and mode != "certificates" else None}
    if name == "alipay":
        return {**common, "merchant_id": c.app_id, "private_key_pem": private_pem(c.app_key).decode(),
                "institution_public_key_pem": public_pem(c.alipay_key).decode()}
    if name == "unionpay":
        from yibao.channels.unionpay import transformers as unionpay_tx

        return {**common, "merchant_id": c.mer_id, "private_key_pem": private_pem(c.merchant_key).decode(),
                "institution_public_key_pem": unionpay_tx.anchors_pem(c.middle_cert, c.root_cert)}
    return {**common, "merchant_id": c.merchant_id, "shared_secret": c.secret}
