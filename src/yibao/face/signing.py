"""HMAC-SHA256 over a message body with the key the platform shares with the face verifier (crypto/signed_http.py);
this module names its header."""

from __future__ import annotations

from yibao.crypto.signed_http import sign, valid

HEADER = "X-Face-Signature"

__all__ = ["HEADER", "sign", "valid"]
