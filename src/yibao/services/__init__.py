"""Use cases, grouped into capability packages; each package owns its tables (docs/architecture.md).

A use case that only reads or writes the database is a plain function taking a connection, run in
one unit of work by its caller. A use case that calls an outside party (a payment institution, a
credit bank, the face verifier, the SMS gateway) has one shape: ``async def use_case(ctx: Context, ...)``. It runs its
units through ``ctx.run`` and calls out *between* them, never inside one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from yibao.crypto.pii import Keyring

if TYPE_CHECKING:
    from yibao.channels.bank.connector import BankChannel
    from yibao.channels.base import Channel
    from yibao.face.client import FaceVerifier
    from yibao.services.agency.connectors import Connectors
    from yibao.sms.client import SmsGateway


@dataclass(frozen=True)
class Context:
    """What a use case that calls out needs, whoever runs it (the API, the pages, the CLI, a background job).

    ``run(work, *, write=True)`` runs one unit of work and returns its result; ``now`` is the clock;
    ``connectors`` reaches every admitted payment institution and credit bank as configured;
    ``face`` is the face verifier and ``sms`` the SMS gateway (None where none is configured);
    ``allow_private_callbacks`` lets hospitals' callbacks go to loopback and private addresses over plain HTTP
    (tests and the demo only: services/payments/callbacks.py)."""

    run: Callable[..., Awaitable[Any]]
    now: Callable[[], datetime]
    keyring: Keyring
    connectors: Connectors
    face: FaceVerifier | None = None
    sms: SmsGateway | None = None
    allow_private_callbacks: bool = False

    @classmethod
    def for_database(cls, db: Any, keyring: Keyring, connectors: Connectors | None = None,
                     face: FaceVerifier | None = None, sms: SmsGateway | None = None, *,
                     allow_private_callbacks: bool = False) -> Context:
        """For a process without the API (the CLI, tests, recovery at start-up): each unit is one
        `Database.run` transaction on a worker thread; the database's audit chain is keyed with ``keyring``."""
        from yibao.services.books import audit

        audit.use_key(db, keyring)
        if connectors is None:
            from yibao.services.agency.connectors import Connectors

            connectors = Connectors(keyring)

        async def run(work: Callable[[Any], Any], *, write: bool = True) -> Any:
            return await asyncio.to_thread(db.run, work, write=write)
        return cls(run, db.clock, keyring, connectors, face, sms, allow_private_callbacks)

    async def channel(self, pi_id: str) -> Channel:
        """The connector of an admitted payment institution (refused if it has no configuration)."""
        return await self.connectors.channel(self.run, pi_id)

    async def bank(self, pi_id: str) -> BankChannel:
        """The connector of a credit bank (信用支付): a payment institution configured with the bank connector."""
        return await self.connectors.bank(self.run, pi_id)

    def verifier(self) -> FaceVerifier:
        if self.face is None:
            from yibao.face.client import FaceUnavailable

            raise FaceUnavailable("face_verifier", "face_verifier_not_configured", "人脸核验服务未配置",
                                  "no face verifier is configured (YIBAO_FACE_URL, YIBAO_FACE_KEY)")
        return self.face

    def texter(self) -> SmsGateway:
        """The SMS gateway; none configured is a 503 that says so (never a code "sent" to nowhere)."""
        if self.sms is None:
            from yibao.sms.client import unavailable

            raise unavailable("sms_gateway_not_configured", "no SMS gateway is configured (YIBAO_SMS_URL, YIBAO_SMS_KEY)", retry_after=3600)
        return self.sms
