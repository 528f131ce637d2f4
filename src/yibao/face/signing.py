"""HMAC-SHA256 over a message body with the key shared by the platform and the face verifier."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Face-Signature"


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def valid(key: bytes, body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(key, body), signature)
