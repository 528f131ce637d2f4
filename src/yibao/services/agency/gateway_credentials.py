"""Institutions' credentials for the national interface gateway (FSI): issued by the agency, one per institution.

Why not the REST API credential: that secret is stored as a hash, and a gateway signature
(SHA-256 of timestamp + token + nonce + timestamp) can only be checked by someone holding the token
itself. So the gateway token is a second secret, kept encrypted under the keyring (AES-GCM), issued
(and re-issued, which replaces it) by an operator — as provincial gateways issue paasid/token pairs
apart from anything else a hospital holds; rotating one never breaks the other.

The provincial mode is optional per institution: an SM4 key (input/output encrypted) and the
institution's SM2 public key (cainfo signs the plaintext input).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto import gm
from yibao.crypto.pii import Keyring
from yibao.domain.errors import InputError, NotFound
from yibao.services.agency import institutions
from yibao.services.books import audit
from yibao.store.tables import fsi_credentials as F

_CONTEXT = "fsi token"
_SM4_CONTEXT = "fsi sm4 key"


@dataclass(frozen=True)
class GatewayCredential:
    institution_id: str
    region: str
    token: str
    sm4_key: bytes | None  # 16 bytes when the provincial mode is on
    sm2_public: str | None  # hex of the institution's SM2 public key

    @property
    def encrypted(self) -> bool:
        return self.sm4_key is not None


def issue(conn: Connection, keyring: Keyring, now: datetime, *, institution_id: str, actor: str, token: str | None = None,
          sm4_key: bytes | None = None, sm2_public: str | None = None) -> GatewayCredential:
    """Issue (or replace) the institution's gateway token; with ``sm4_key`` and ``sm2_public``, the provincial mode.
    Returns the credential with its token in clear: shown once to the operator who hands it to the hospital."""
    inst = institutions.get(conn, institution_id)
    if inst is None:
        raise NotFound("institution", "not_found", "机构不存在", "institution not found")
    if token is not None and not (16 <= len(token) <= 100):
        raise InputError("token", "weak_token", "网关令牌应为16–100个字符", "the gateway token must be 16–100 characters")
    if sm4_key is not None and len(sm4_key) != 16:
        raise InputError("sm4_key", "invalid_key", "SM4 密钥应为16字节（32位十六进制）", "the SM4 key must be 16 bytes (32 hex digits)")
    if sm2_public is not None:
        try:
            sm2_public = gm.Sm2PublicKey.from_hex(sm2_public).to_hex()
        except gm.GmError as exc:
            raise InputError("sm2_public", exc.code, exc.message_zh, exc.message_en) from None
    if (sm4_key is None) != (sm2_public is None):
        raise InputError("sm4_key", "incomplete_mode", "加密模式须同时设置 SM4 密钥和 SM2 公钥", "the encrypted mode needs both the SM4 key and the SM2 public key")
    token = token or secrets.token_urlsafe(24)
    values = dict(region=inst.region, token_enc=keyring.encrypt(token, _CONTEXT),
                  sm4_key_enc=keyring.encrypt(sm4_key.hex(), _SM4_CONTEXT) if sm4_key else None, sm2_public=sm2_public,
                  status="active", issued_by=actor, updated_at=now)
    if conn.execute(select(F.c.institution_id).where(F.c.institution_id == institution_id)).first() is None:
        conn.execute(F.insert().values(institution_id=institution_id, created_at=now, **values))
    else:
        conn.execute(update(F).where(F.c.institution_id == institution_id).values(**values))
    audit.append(conn, region=inst.region, actor=actor, action="fsi.credential_issue", subject=institution_id,
                 detail={"encrypted": sm4_key is not None}, now=now)
    return GatewayCredential(institution_id, inst.region, token, sm4_key, sm2_public)


def revoke(conn: Connection, now: datetime, *, institution_id: str, actor: str) -> None:
    res = conn.execute(update(F).where(F.c.institution_id == institution_id, F.c.status == "active").values(status="revoked", updated_at=now))
    if res.rowcount != 1:
        raise NotFound("institution", "not_found", "该机构没有有效的网关凭证", "the institution has no active gateway credential")
    inst = institutions.get(conn, institution_id)
    assert inst is not None
    audit.append(conn, region=inst.region, actor=actor, action="fsi.credential_revoke", subject=institution_id, detail={}, now=now)


def active(conn: Connection, keyring: Keyring, institution_id: str) -> GatewayCredential | None:
    """The institution's active gateway credential, decrypted; None when it has none (or the institution is not active)."""
    row = conn.execute(select(F).where(F.c.institution_id == institution_id, F.c.status == "active")).first()
    if row is None:
        return None
    inst = institutions.get(conn, institution_id)
    if inst is None or inst.status != "active":
        return None
    sm4 = bytes.fromhex(keyring.decrypt(row.sm4_key_enc, _SM4_CONTEXT)) if row.sm4_key_enc is not None else None
    return GatewayCredential(row.institution_id, row.region, keyring.decrypt(row.token_enc, _CONTEXT), sm4, row.sm2_public)
