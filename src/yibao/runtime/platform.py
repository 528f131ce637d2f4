"""What every request needs: the database, the PII keyring, the clock; and who is calling."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Unauthorized
from yibao.services.agency import institutions
from yibao.services.agency.institutions import Institution
from yibao.store.db import Database
from yibao.store.tables import sessions as SES


@dataclass
class Platform:
    """Process-wide state held by the app (app.state.platform)."""

    db: Database
    keyring: Keyring
    operator_tokens: dict[str, str]  # sha256(token) -> operator name
    channels: Any = None  # services.channel_registry.Channels: connectors to payment institutions, built once per config
    _institution_cache: dict[str, tuple[float, Institution]] = field(default_factory=dict)
    credit_banks: dict[str, Any] = field(default_factory=dict)  # payment_institution_id → BankChannel (routers/credit.install)
    _batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatcher]" = field(default_factory=weakref.WeakKeyDictionary)

    def __post_init__(self) -> None:
        if self.channels is None:
            from yibao.services.agency.connectors import Channels

            self.channels = Channels(self.keyring)

    def now(self):  # noqa: ANN201
        return self.db.clock()

    def payments(self, actor: str = "platform:payments"):  # noqa: ANN201
        """The context a payment flow runs in: this platform's units of work, clock, keyring, connectors
        and credit-line banks — one place, so every flow (API, pages, recovery) can pay by credit."""
        from yibao.services.credit.lines import CreditContext
        from yibao.services.payments.flow import Context

        return Context(self.run, self.now, self.keyring, self.channels, actor,
                       credit=CreditContext(self.run, self.now, self.keyring, self.credit_banks))

    async def run(self, work: Callable[[Connection], Any], *, write: bool = True) -> Any:
        """Run a unit of work.

        PostgreSQL units run on a worker thread: their network round trips overlap. SQLite units
        run right here on the event loop: they are a few milliseconds of local work, writers are
        serialised anyway, and the thread hand-off measured slower than the work (bench/api.py).
        SQLite writes go through a `WriteBatcher` (group commit). Nothing slow — no call to a
        payment institution or verifier — ever runs inside a unit.
        """
        if self.db.is_sqlite:
            if write and self.db.batches_writes:
                return await self._batcher().run(work)
            return self.db.run(work, write=write)
        return await run_in_threadpool(self.db.run, work, write=write)

    def _batcher(self) -> "WriteBatcher":
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = WriteBatcher(self.db, loop)
        return batcher


class WriteBatcher:
    """Group commit for SQLite on one event loop.

    A write unit is queued and its request awaits the outcome. The queue is flushed on the loop's
    next turn as one transaction (`Database.try_run_batch`), so the requests parsed meanwhile share
    one commit. When another worker process holds the database, the flush is retried shortly
    instead of blocking the loop: this process keeps parsing requests (the other core does the
    writing), and the next batch is larger. A response is sent only after its unit's commit.
    """

    MAX_BATCH = 64  # bounds the time one batch holds the database (and the wait of the last unit in it)
    RETRY_S = 0.0005

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.db = db
        self.loop = loop
        self.queue: list[tuple[Callable[[Connection], Any], asyncio.Future]] = []
        self.scheduled = False

    async def run(self, work: Callable[[Connection], Any]) -> Any:
        future = self.loop.create_future()
        self.queue.append((work, future))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self.scheduled = False
        batch = [(w, f) for w, f in self.queue[: self.MAX_BATCH] if not f.cancelled()]
        del self.queue[: self.MAX_BATCH]
        if batch:
            try:
                outcomes = self.db.try_run_batch([w for w, _ in batch])
            except BaseException as exc:  # noqa: BLE001 — nothing was committed; every waiter learns why
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                raise
            if outcomes is None:  # another process is writing: keep these first in line and try again soon
                self.queue[:0] = batch
                self.scheduled = True
                self.loop.call_later(self.RETRY_S, self._flush)
                return
            for (_, f), outcome in zip(batch, outcomes):
                if f.done():
                    continue
                if outcome.ok:
                    f.set_result(outcome.value)
                else:
                    f.set_exception(outcome.value)
        if self.queue and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)


def operator_tokens_from_env(default_demo: bool) -> dict[str, str]:
    tokens = {}
    raw = os.environ.get("YIBAO_ADMIN_TOKENS", "")  # "name:token,name2:token2"
    for item in filter(None, raw.split(",")):
        name, _, token = item.partition(":")
        tokens[hashlib.sha256(token.encode()).hexdigest()] = name
    if not tokens and default_demo:
        tokens[hashlib.sha256(b"demo-operator-token").hexdigest()] = "demo-operator"
    return tokens


async def platform(request: Request) -> Platform:
    # async on purpose: FastAPI runs a plain `def` dependency on the thread pool (a thread hop per request).
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
