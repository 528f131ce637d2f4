"""HMAC-SHA256 over a message body with the key the platform shares with the SMS gateway (crypto/signed_http.py);
this module names its header."""

from __future__ import annotations

from yibao.crypto.signed_http import sign, valid

HEADER = "X-Sms-Signature"
MAX_SKEW_S = 300  # a signed request older (or newer) than this is refused: a copied request cannot be sent again later

__all__ = ["HEADER", "sign", "valid"]
