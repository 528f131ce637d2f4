"""Cookies and CSRF for the pages.

- Every area's cookie holds a random session token whose hash only is stored server-side: the holder's
  is the session `sessions.verify_code` opened (the same the API uses), the cashier's and the operator's
  a console session (`sessions.open_console`, CONSOLE_TTL). Log-out deletes the row, so the cookie —
  and any copy of it — stops working at once; a suspended institution or a removed operator token stops
  at the next request. Every session cookie is HttpOnly, SameSite=Strict, and scoped to its area's path,
  so /app, /cashier and /admin never see each other's.
- CSRF: each form carries a token derived from the session cookie with a key of its own
  (HMAC); before log-in, from a random `yibao_pre` cookie. A post whose token does not match is
  refused before anything runs.
- The flash cookie (a message, and the fields to fill in again after a refusal) is encrypted, not only
  signed: it may carry a name, a card number or a typed payment code.
- Keys come from the platform keyring (`purpose_key`), so nothing new needs to be configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import Request
from starlette.responses import Response

from yibao.crypto.pii import Keyring

LANG_COOKIE = "yibao_lang"
PRE_COOKIE = "yibao_pre"
FLASH_COOKIE = "yibao_flash"
SESSION_COOKIES = {"app": "yibao_app", "cashier": "yibao_cashier", "admin": "yibao_admin"}
AREA_PATHS = {"app": "/app", "cashier": "/cashier", "admin": "/admin"}


def _key(keyring: Keyring, purpose: str) -> bytes:
    return keyring.purpose_key(f"web {purpose} v1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(keyring: Keyring, payload: dict[str, Any], ttl: int) -> str:
    """An encrypted, authenticated, expiring cookie value (AES-GCM): for what may carry personal data —
    the flash message and the form fields kept after a refusal (a name, a card number) — which a signed
    cookie would show to anyone who reads it."""
    plain = json.dumps({"p": payload, "e": int(time.time() + ttl)}, separators=(",", ":"), ensure_ascii=False)
    return _b64(keyring.encrypt(plain, "web sealed cookie v1"))


def unseal(keyring: Keyring, value: str | None) -> dict[str, Any] | None:
    if not value or len(value) > 8192:
        return None
    try:
        outer = json.loads(keyring.decrypt(_unb64(value), "web sealed cookie v1"))
    except (InvalidTag, ValueError, TypeError):  # altered, another key, truncated, not base64 or not JSON: no cookie of ours
        return None
    if not isinstance(outer, dict) or not isinstance(outer.get("e"), int) or outer["e"] < time.time():
        return None
    return outer["p"] if isinstance(outer.get("p"), dict) else None


def csrf_token(keyring: Keyring, area: str, cookie_value: str) -> str:
    return hmac.new(_key(keyring, "csrf"), f"{area}\n{cookie_value}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(keyring: Keyring, area: str, cookie_value: str | None, given: str | None) -> bool:
    if not cookie_value or not given:
        return False
    return hmac.compare_digest(csrf_token(keyring, area, cookie_value), given)


def secure_cookies(request: Request) -> bool:
    """Secure cookies behind TLS (or when told so: a proxy terminating TLS)."""
    return request.url.scheme == "https" or os.environ.get("YIBAO_WEB_SECURE_COOKIES") == "1"


def set_cookie(response: Response, request: Request, name: str, value: str, *, path: str = "/", max_age: int | None = None) -> None:
    response.set_cookie(name, value, path=path, max_age=max_age, httponly=True, samesite="strict", secure=secure_cookies(request))


def clear_cookie(response: Response, request: Request, name: str, *, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="strict", secure=secure_cookies(request))


def pre_cookie(request: Request) -> tuple[str, bool]:
    """The anonymous cookie that log-in forms' CSRF tokens are bound to; (value, newly made)."""
    value = request.cookies.get(PRE_COOKIE)
    if value and 16 <= len(value) <= 64:
        return value, False
    return secrets.token_urlsafe(24), True
