"""What every request needs: the database, the PII keyring, the clock; and who is calling."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Unauthorized
from yibao.services import institutions
from yibao.services.institutions import Institution
from yibao.store.db import Database
from yibao.store.tables import sessions as SES


@dataclass
class Platform:
    """Process-wide state held by the app (app.state.platform)."""

    db: Database
    keyring: Keyring
    operator_tokens: dict[str, str]  # sha256(token) -> operator name
    _institution_cache: dict[str, tuple[float, Institution]] = field(default_factory=dict)

    def now(self):  # noqa: ANN201
        return self.db.clock()

    async def run(self, work: Callable[[Connection], Any], *, write: bool = True) -> Any:
        """Run a unit of work.

        PostgreSQL units run on a worker thread: their network round trips overlap. SQLite units
        run right here on the event loop: they are a few milliseconds of local work, writers are
        serialised anyway, and the thread hand-off measured slower than the work (bench/api.py).
        Nothing slow — no call to a payment institution or verifier — ever runs inside a unit.
        """
        if self.db.is_sqlite:
            return self.db.run(work, write=write)
        return await run_in_threadpool(self.db.run, work, write=write)


def operator_tokens_from_env(default_demo: bool) -> dict[str, str]:
    tokens = {}
    raw = os.environ.get("YIBAO_ADMIN_TOKENS", "")  # "name:token,name2:token2"
    for item in filter(None, raw.split(",")):
        name, _, token = item.partition(":")
        tokens[hashlib.sha256(token.encode()).hexdigest()] = name
    if not tokens and default_demo:
        tokens[hashlib.sha256(b"demo-operator-token").hexdigest()] = "demo-operator"
    return tokens


def platform(request: Request) -> Platform:
    return request.app.state.platform


bearer = HTTPBearer(auto_error=False, description="Bearer token: an institution credential, a holder's session or an operator token")


def _token(creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or not creds.credentials:
        raise Unauthorized("Authorization", "missing_credentials", "缺少 Authorization: Bearer 凭证", "missing Authorization: Bearer credentials")
    return creds.credentials


@dataclass(frozen=True)
class Caller:
    audience: str  # his | patient | operator
    principal: str  # institution id | person id | operator name
    region: str | None
    institution: Institution | None = None

    @property
    def scope(self) -> str:
        return f"{self.audience}:{self.principal}"

    @property
    def actor(self) -> str:
        return f"{self.audience}:{self.principal}"


async def institution_caller(p: Platform = Depends(platform), creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """HIS credentials: `Authorization: Bearer <fixmedins_code>.<secret>`."""
    token = _token(creds)
    cached = p._institution_cache.get(token)
    if cached and cached[0] > time.monotonic():
        inst = cached[1]
    else:
        code, _, secret = token.partition(".")
        inst = await p.run(lambda c: institutions.authenticate(c, code, secret), write=False)
        p._institution_cache[token] = (time.monotonic() + 30, inst)  # a suspension takes effect within 30 s
    return Caller("his", inst.id, inst.region, inst)


async def patient_caller(p: Platform = Depends(platform), creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """A holder's session token from `POST /api/v1/patient/sessions`."""
    token_hash = hashlib.sha256(_token(creds).encode()).hexdigest()

    def load(conn: Connection):  # noqa: ANN202
        return conn.execute(select(SES.c.person_id, SES.c.region, SES.c.expires_at).where(SES.c.token_hash == token_hash)).first()

    row = await p.run(load, write=False)
    if row is None or _aware(row.expires_at) <= p.now():
        raise Unauthorized("Authorization", "session_expired", "登录已失效，请重新登录", "the session is invalid or expired; log in again")
    return Caller("patient", row.person_id, row.region)


async def operator_caller(p: Platform = Depends(platform), creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    token_hash = hashlib.sha256(_token(creds).encode()).hexdigest()
    for known, name in p.operator_tokens.items():
        if hmac.compare_digest(known, token_hash):
            return Caller("operator", name, None)
    raise Unauthorized("Authorization", "bad_credentials", "经办人员凭证无效", "invalid operator token")


def _aware(dt):  # noqa: ANN001, ANN202
    from datetime import timezone

    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
