"""HMAC-SHA256 over a message body with the key the platform shares with its SMS gateway."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Sms-Signature"
MAX_SKEW_S = 300  # a signed request older (or newer) than this is refused: a copied request cannot be sent again later


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def valid(key: bytes, body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(key, body), signature)
