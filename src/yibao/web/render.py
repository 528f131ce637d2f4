"""Rendering pages: the Jinja2 environment, the language, flash messages, redirects, headers.

A post answers 303 to a page (post/redirect/get); what it has to say travels in a short-lived,
encrypted flash cookie that the next page shows once, in the reader's language.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from yibao.domain import regions
from yibao.domain.errors import YibaoError
from yibao.domain.money import format_yuan
from yibao.web import i18n, security

ENV = Environment(loader=PackageLoader("yibao.web", "templates"), autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)
CHINA = timezone(timedelta(hours=8), "CST")  # the pages show times as the regions live them (UTC+8)

# Pages carry personal data and live payment codes: never cached, never framed; scripts, styles and
# images only from the app itself (inline SVG drawings are markup, not images, and need nothing).
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def lang_of(request: Request) -> str:
    return "en" if request.cookies.get(security.LANG_COOKIE) == "en" else "zh"


def yuan(value: Any) -> str:
    """¥123.45 from fen (int) or from a yuan string of a settlement document."""
    if value is None or value == "":
        return "—"
    text = format_yuan(value) if isinstance(value, int) else str(value)
    return f"-¥{text[1:]}" if text.startswith("-") else f"¥{text}"


def local_time(value: Any, with_seconds: bool = False) -> str:
    if value is None or value == "":
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


ENV.filters["yuan"] = yuan
ENV.filters["local"] = local_time


def field_name(field: str | None) -> str:
    """The form control an error's field names: "lines[0].unit_price" → "unit_price" (the page's control)."""
    return re.sub(r"\[\d+\]", "", (field or "").rsplit(".", 1)[-1])


def _flash_of(request: Request) -> dict[str, Any] | None:
    keyring = request.app.state.platform.keyring
    return security.unseal(keyring, request.cookies.get(security.FLASH_COOKIE))


def render(request: Request, template: str, *, area: str, csrf_cookie: str | None, status: int = 200,
           set_cookies: dict[str, tuple[str, str]] | None = None, **context: Any) -> HTMLResponse:
    """The page, in the reader's language, with the area's CSRF token and any flash message."""
    lang = lang_of(request)
    keyring = request.app.state.platform.keyring
    flash = _flash_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")

    def t(key: str, **kw: Any) -> str:
        return i18n.text(lang, key, **kw)

    def both(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    def label(prefix: str, code: str) -> str:
        """The catalogue's name for a code (a card status, a transaction kind …), else the code itself."""
        return i18n.text(lang, prefix + code) if prefix + code in i18n.MESSAGES else code

    def message(err: dict[str, Any] | YibaoError) -> str:
        """An error in the reader's language, led by the name of the field it is about when the page has one
        ("单价：金额最多2位小数" — a service's message names the rule, the form's label names the field)."""
        if isinstance(err, YibaoError):
            text, field = both(err.message_zh, err.message_en), err.field
        else:
            text, field = both(err.get("zh", ""), err.get("en", "")), err.get("field") or ""
        name = field_name(field)
        key = f"field_{name}"
        if not name or key not in i18n.MESSAGES:
            return text
        what = i18n.text(lang, key)
        if what.lower() in text.lower():  # the message names it already ("还款金额超过待还金额")
            return text
        return f"{what}：{text}" if lang == "zh" else f"{what}: {text}"

    def invalid(name: str) -> Markup:
        """Marks the control the refusal shown in the flash is about (screen readers hear why)."""
        if flash and flash.get("level") == "error" and field_name(flash.get("field")) == name:
            return Markup(' aria-invalid="true" aria-describedby="flash"')
        return Markup("")

    html = ENV.get_template(template).render(
        lang=lang, t=t, both=both, label=label, message=message, invalid=invalid, area=area, flash=flash, values=(flash or {}).get("values", {}),
        region_name=lambda code: regions.label(code, lang),  # 宁波市（330200）: the one table of region names
        csrf=security.csrf_token(keyring, area, csrf_cookie) if csrf_cookie else "", nonce=lambda: secrets.token_urlsafe(18),
        lang_toggle=f"/lang?to={'en' if lang == 'zh' else 'zh'}&next={quote(here, safe='')}", here=here,
        demo=getattr(request.app.state, "demo_aids", None) is not None, **context)
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if flash is not None:
        security.clear_cookie(response, request, security.FLASH_COOKIE)
    for name, (value, path) in (set_cookies or {}).items():
        security.set_cookie(response, request, name, value, path=path)
    return response


def redirect(request: Request, to: str, *, ok: tuple[str, ...] | None = None, error: YibaoError | None = None,
             values: dict[str, str] | None = None) -> RedirectResponse:
    """303 to a page of ours, with a message (and form values to show again) for it. A refusal that says when to
    try again (a lock-out, an outage) carries Retry-After too, as the API's does; its words say it to the reader."""
    headers = {"Cache-Control": "no-store"}
    if error is not None and isinstance(getattr(error, "retry_after", None), int):
        headers["Retry-After"] = str(error.retry_after)
    response = RedirectResponse(safe_next(to), status_code=303, headers=headers)
    flash: dict[str, Any] | None = None
    if error is not None:
        flash = {"level": "error", "zh": error.message_zh, "en": error.message_en, "code": error.code, "field": error.field}
    elif ok is not None:  # (zh, en) says it went well; a third element names another level: "notice" (waiting, not done)
        flash = {"level": ok[2] if len(ok) > 2 else "ok", "zh": ok[0], "en": ok[1]}
    if flash is not None:
        if values:
            flash["values"] = values
        keyring = request.app.state.platform.keyring
        security.set_cookie(response, request, security.FLASH_COOKIE, security.seal(keyring, flash, ttl=60), max_age=60)
    return response


def safe_next(to: str) -> str:
    """Only a path on this site: never another host (no open redirect)."""
    if not to.startswith("/") or to.startswith("//") or "\\" in to or "\n" in to or "\r" in to:
        return "/"
    return to


def markup_svg(svg: str) -> Markup:
    """An SVG we drew ourselves (segno, code128, charts: no input text unescaped) placed inline."""
    return Markup(svg)
