"""SANDBOX payment institutions: real HTTP services standing in for wxpay, alipay, unionpay and a bank.

`pair(name)` makes one sandbox institution together with the platform-side credentials that match
it (each side gets its own RSA key pair, generated here, and is told only the other's public key —
as with a real institution), and `Pair.connector(base_url)` the platform's `Channel` for it.
`mount_all(app, …)` mounts them all under `/sandbox/{name}` of the demo app.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI

from yibao.channels.base import Channel
from yibao.channels.crypto import generate_rsa_key, key_serial, load_or_create_key
from yibao.crypto.files import create_private
from yibao.sandbox.channels.admin import Runtime
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS

NAMES = ("wxpay", "alipay", "unionpay", "bank")


@dataclass
class Pair:
    name: str
    app: FastAPI
    make_connector: Callable[..., Channel]

    @property
    def runtime(self) -> Runtime:
        return self.app.state.sandbox

    def connector(self, base_url: str, *, notify_url: str | None = None, timeout: float = 5.0) -> Any:
        """The platform's connector to this sandbox, reached over HTTP at ``base_url``."""
        return self.make_connector(base_url.rstrip("/"), notify_url=notify_url, timeout=timeout)


def _secret(key_dir: Path | None, name: str, *, text: bool = False) -> bytes:
    """A 32-byte shared secret (WeChat's API v3 key, the bank's HMAC key): from key_dir, made on first use, or fresh.
    ``text``: 32 letters and digits, as WeChat's API v3 keys are (its SDKs take the key as a string)."""
    fresh = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b").encode() if text else secrets.token_bytes(32)
    if key_dir is None:
        return fresh
    path = key_dir / f"{name}-shared-secret.bin"
    create_private(path, fresh)  # 0600 in a 0700 folder; kept when it exists
    data = path.read_bytes()
    if len(data) != 32:
        raise ValueError(f"{path} must hold exactly 32 bytes")
    return data


def pair(name: str, *, callback_url: str | None = None, seed: int | None = None,
         notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS, clock: Callable[[], datetime] | None = None,
         key_dir: Path | None = None, identification: str = "public_key") -> Pair:
    """One sandbox institution and the matching platform-side configuration.

    Keys are fresh for each call, or — with ``key_dir`` — read from (and made once in) that folder:
    ``{name}-sandbox-key.pem`` (the sandbox's private key), ``{name}-platform-key.pem`` (the
    platform's), ``{name}-shared-secret.bin``. A sandbox run alone and the platform then use the
    same folder, each reading its own private key and the other's public half.
    ``identification`` (wxpay only): ``public_key`` — answers name the platform public-key id — or
    ``certificate`` — platform certificates from ``GET /v3/certificates``, downloaded by the connector.
    """
    if name == "bank":  # HMAC under a shared secret: no key pairs
        from yibao.channels.bank import connector as bank
        from yibao.sandbox.channels import bank as sandbox_bank

        bcfg = sandbox_bank.BankSandboxConfig(secret=_secret(key_dir, name), merchant_id="H440300-SANDBOX", callback_url=callback_url,
                                              notify_delays_ms=notify_delays_ms, seed=seed)

        def make_bank(base_url: str, *, notify_url: str | None, timeout: float) -> Channel:
            return bank.BankChannel(bank.BankConfig(base_url, bcfg.merchant_id, bcfg.secret, notify_url, timeout))
        return Pair(name, sandbox_bank.create_app(bcfg, clock=clock), make_bank)
    if name not in NAMES:
        raise ValueError(f"no sandbox institution named {name!r}; choose one of {', '.join(NAMES)}")
    skey = load_or_create_key(key_dir / f"{name}-sandbox-key.pem") if key_dir else generate_rsa_key()
    pkey = load_or_create_key(key_dir / f"{name}-platform-key.pem") if key_dir else generate_rsa_key()
    if name == "wxpay":
        from yibao.channels.wxpay import connector as wxpay
        from yibao.sandbox.channels import wxpay as sandbox

        v3 = _secret(key_dir, name, text=True)
        cfg = sandbox.WxPaySandboxConfig(key=skey, mchid="1900000109", appid="wxd678efh567hg6787", merchant_key=pkey.public_key(),
                                         api_v3_key=v3, callback_url=callback_url, notify_delays_ms=notify_delays_ms, seed=seed,
                                         identification=identification)

        def make_wxpay(base_url: str, *, notify_url: str | None, timeout: float) -> Channel:
            if cfg.identification == "certificate":  # no key configured: the connector downloads the certificates
                return wxpay.WxPayChannel(wxpay.WxPayConfig(base_url, cfg.mchid, cfg.appid, key_serial(pkey), pkey, "", None, v3,
                                                            notify_url, timeout, plan_id=cfg.plan_id, platform_certificates=True))
            return wxpay.WxPayChannel(wxpay.WxPayConfig(base_url, cfg.mchid, cfg.appid, key_serial(pkey), pkey, wxpay.public_key_id(skey),
                                                        skey.public_key(), v3, notify_url, timeout, plan_id=cfg.plan_id))
        return Pair(name, sandbox.create_app(cfg, clock=clock), make_wxpay)
    if name == "alipay":
        from yibao.channels.alipay import connector as alipay
        from yibao.sandbox.channels import alipay as sandbox_alipay

        acfg = sandbox_alipay.AlipaySandboxConfig(key=skey, app_id="2021000122600001", app_key=pkey.public_key(), callback_url=callback_url,
                                                  notify_delays_ms=notify_delays_ms, seed=seed)

        def make_alipay(base_url: str, *, notify_url: str | None, timeout: float) -> Channel:
            return alipay.AlipayChannel(alipay.AlipayConfig(base_url, acfg.app_id, pkey, skey.public_key(), notify_url, timeout))
        return Pair(name, sandbox_alipay.create_app(acfg, clock=clock), make_alipay)
    if name == "unionpay":
        from yibao.channels.unionpay import connector as unionpay
        from yibao.sandbox.channels import unionpay as sandbox_unionpay

        # UnionPay signs with a certificate its root → middle CA issued; the platform trusts those two (not one key).
        ca = sandbox_unionpay.load_or_create_ca(key_dir, skey)
        ucfg = sandbox_unionpay.UnionPaySandboxConfig(ca=ca, mer_id="777290058110048", merchant_key=pkey.public_key(),
                                                      callback_url=callback_url, notify_delays_ms=notify_delays_ms, seed=seed)

        def make_unionpay(base_url: str, *, notify_url: str | None, timeout: float) -> Channel:
            return unionpay.UnionPayChannel(unionpay.UnionPayConfig(base_url, ucfg.mer_id, unionpay.tx.cert_id_of(pkey), pkey, ca.root,
                                                                    ca.middle, notify_url, timeout))
        return Pair(name, sandbox_unionpay.create_app(ucfg, clock=clock), make_unionpay)
    raise ValueError(f"no sandbox institution named {name!r}; choose one of {', '.join(NAMES)}")


def mount_all(app: FastAPI, *, base_url: str, callback_url: Callable[[str], str] | None = None,
              names: tuple[str, ...] = NAMES, **kw: Any) -> dict[str, Pair]:
    """Mount each sandbox institution at /sandbox/{name}; returns the pairs, whose
    ``connector(f"{base_url}/sandbox/{name}")`` the platform uses (over HTTP, async, as with a real one)."""
    pairs: dict[str, Pair] = {}
    for name in names:
        p = pair(name, callback_url=callback_url(name) if callback_url else None, **kw)
        app.mount(f"/sandbox/{name}", p.app)
        pairs[name] = p
    app.state.sandbox_institutions = pairs
    app.state.sandbox_base_url = base_url.rstrip("/")
    return pairs
