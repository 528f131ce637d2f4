"""Reading a posted form: the CSRF check first, then the fields, refused (naming the field) if they
carry NUL (PostgreSQL text cannot hold it) or are missing when required."""

from __future__ import annotations

import re

from fastapi import Request
from starlette.datastructures import UploadFile

from yibao.domain.errors import Forbidden, InputError
from yibao.web import security

MAX_FIELD = 2000
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Form:
    """The posted fields (text), and the files; `nonce` identifies the rendered form (double-submit)."""

    def __init__(self, fields: dict[str, str], files: dict[str, UploadFile]) -> None:
        self.fields = fields
        self.files = files

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default).strip()

    def require(self, name: str, zh: str, en: str) -> str:
        value = self.get(name)
        if not value:
            raise InputError(name, "required", f"请填写{zh}", f"{en} is required")
        return value

    def flag(self, name: str) -> bool:
        return self.get(name) in ("1", "on", "true", "yes")

    @property
    def nonce(self) -> str:
        value = self.get("nonce")
        if not _NONCE.match(value):
            raise InputError("nonce", "form_expired", "表单已失效，请刷新页面后重试", "the form has expired; reload the page and try again")
        return value

    def values(self, *names: str) -> dict[str, str]:
        """What to put back into the form when it is shown again after an error."""
        return {n: self.get(n) for n in names if n in self.fields}


async def read(request: Request, area: str, csrf_cookie: str | None) -> Form:
    """The form, after its CSRF token is checked against the cookie it was derived from."""
    data = await request.form(max_files=2, max_fields=200)
    fields: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for name, value in data.multi_items():
        if isinstance(value, UploadFile):
            files[name] = value
            continue
        if "\x00" in name or "\x00" in value:
            raise InputError(name.replace("\x00", "\\u0000"), "nul_character", "不能包含空字符", "must not contain the NUL character")
        if len(value) > MAX_FIELD:
            raise InputError(name, "too_long", "内容过长", "is too long")
        fields[name] = value
    keyring = request.app.state.platform.keyring
    if not security.csrf_ok(keyring, area, csrf_cookie, fields.get("csrf")):
        raise Forbidden("csrf", "csrf_failed", "页面已过期或来源不明，请刷新页面后重试",
                        "the page has expired or the form came from elsewhere; reload the page and try again")
    return Form(fields, files)
