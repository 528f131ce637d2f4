"""The platform a serving process runs: the database, the PII keyring, the clock, the connectors, the
face verifier, the SMS gateway — and the one `Context` every use case that calls out is given
(services/__init__.py)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import anyio
import anyio.to_thread
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import YibaoError
from yibao.face.client import FaceVerifier
from yibao.runtime import production
from yibao.runtime.batching import WriteBatcher
from yibao.services import Context
from yibao.services.access import credentials
from yibao.services.agency.connectors import Connectors
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.sms.client import SmsGateway
from yibao.store.anchors import AnchorLog
from yibao.store.db import Database

PG_THREADS = int(os.environ.get("YIBAO_PG_THREADS", "16"))
INSTITUTION_CACHE_S = 30  # a suspension or a new secret takes effect within this


@dataclass
class Platform:
    """Process-wide state held by the app (app.state.platform) and built once by the composition root."""

    db: Database
    keyring: Keyring
    operator_tokens: dict[str, str]  # sha256(token) -> operator name
    connectors: Connectors | None = None  # every payment institution and credit bank, from its configuration
    face: FaceVerifier | None = None
    sms: SmsGateway | None = None
    anchors: AnchorLog | None = None  # where the audit chain's heads are checkpointed (YIBAO_AUDIT_ANCHOR)
    # Hospitals' callbacks may go to loopback and private addresses over plain HTTP: the tests' and the
    # demo's, set by the composition root; production never (services/payments/callbacks.py).
    allow_private_callbacks: bool = False
    _institution_cache: dict[str, tuple[float, Institution]] = field(default_factory=dict)
    # Credentials being checked now, per event loop: a HIS that opens thirty connections at once is checked once.
    _institution_inflight: dict[tuple[Any, ...], "asyncio.Future[Any]"] = field(default_factory=dict)
    _limiters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]" = field(default_factory=weakref.WeakKeyDictionary)
    _batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatcher]" = field(default_factory=weakref.WeakKeyDictionary)

    def __post_init__(self) -> None:
        if self.connectors is None:
            self.connectors = Connectors(self.keyring)
        audit.use_key(self.db, self.keyring)

    @property
    def context(self) -> Context:
        """The context every use case that calls out is given (a new face verifier or SMS gateway takes effect at once)."""
        assert self.connectors is not None
        return Context(self.run, self.now, self.keyring, self.connectors, self.face, self.sms, allow_private_callbacks=self.allow_private_callbacks)

    def now(self) -> datetime:
        return self.db.clock()

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
        return await anyio.to_thread.run_sync(functools.partial(self.db.run, work, write=write), limiter=self._pg_threads())

    def _pg_threads(self) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(asyncio.get_running_loop())
        if limiter is None:
            limiter = self._limiters[asyncio.get_running_loop()] = anyio.CapacityLimiter(PG_THREADS)
        return limiter

    def _batcher(self) -> WriteBatcher:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = WriteBatcher(self.db, loop)
        return batcher

    async def institution(self, credential: str, client: str | None = None, field: str = "Authorization") -> Institution:
        """The institution a HIS credential (`<fixmedins_code>.<secret>`) belongs to; refused if wrong or suspended,
        and — after too many wrong ones from ``client`` (its address) or for that institution — refused with
        Retry-After (services/access/credentials.py). A credential that worked from this address is remembered
        for a while: no query, no count."""
        key = (credential, client)
        cached = self._institution_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        # One check per credential and address at a time: the requests that arrive meanwhile wait for its answer. Without
        # this, the first burst after a start (every connection of a HIS, the cache empty) ran one check each, each
        # serialised on the credential's attempt counter and each paying the secret's hash: a stall of seconds (bench/api.py).
        flight = (asyncio.get_running_loop(), credential, client, field)
        pending = self._institution_inflight.get(flight)
        if pending is not None:
            inst = await asyncio.shield(pending)
        else:
            pending = self._institution_inflight[flight] = asyncio.get_running_loop().create_future()
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even when nobody waited
            code, _, secret = credential.partition(".")
            try:
                inst = await self.run(lambda c: credentials.institution(c, self.keyring, self.now(), code=code, secret=secret,
                                                                        address=client, field=field))
            except asyncio.CancelledError:
                pending.cancel()  # whoever waited asks again
                raise
            except BaseException as exc:
                pending.set_exception(exc)
                raise
            else:
                pending.set_result(inst)
            finally:
                del self._institution_inflight[flight]
        if isinstance(inst, YibaoError):
            raise inst  # after its count committed
        self._institution_cache[key] = (time.monotonic() + INSTITUTION_CACHE_S, inst)
        return inst

    async def operator(self, token: str, client: str | None = None, field: str = "Authorization") -> str:
        """The operator an operator token names; a wrong one is counted per client address, and too many are refused
        with Retry-After — the right token too, so that guessing stops (services/access/credentials.py)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        name = next((n for known, n in self.operator_tokens.items() if hmac.compare_digest(known, digest)), None)
        found = await self.run(lambda c: credentials.operator(c, self.keyring, self.now(), name=name, address=client, field=field))
        if isinstance(found, YibaoError):
            raise found  # after its count committed
        return found


def operator_tokens_from_env(demo: bool) -> dict[str, str]:
    """The operators' tokens of YIBAO_ADMIN_TOKENS ("name:token,…"): production refuses weak ones and never
    knows the demo's (runtime/production.py)."""
    return production.operator_tokens(os.environ.get("YIBAO_ADMIN_TOKENS", ""), demo=demo)
