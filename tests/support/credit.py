"""Set-up for credit-payment tests: a Shenzhen world whose employee has an e-card bound to the
SANDBOX bank (a real HTTP server on loopback), and the credit context the services take."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timezone

import httpx

from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.identity import admit, bind, ecard, enrol_adult, id_number_of, name_of
from tests.support.world import World, seed
from yibao.domain import credit as rules_
from yibao.domain.identity import make_id_number
from yibao.services import Context
from yibao.services.agency import connectors
from yibao.services.books import ledger
from yibao.services.credit import enrolment as credit_enrolment
from yibao.services.people import families

BANK = "bank-440300"


def run(coro):
    return asyncio.run(coro)


@dataclass
class CreditWorld:
    world: World
    ctx: Context
    holder: str
    bank: object  # the Live sandbox handle

    def enrol(self, person_id: str | None = None):
        return run(credit_enrolment.enrol(self.ctx, holder_id=person_id or self.holder, pi_id=BANK, consent_version=rules_.CONSENT_VERSION,
                                actor="test"))


def credit_world(db, keyring, clock, bank, sms=None) -> CreditWorld:
    """Our clock starts at the bank's (real) time, so both sides agree on what day it is. ``sms``: the SMS gateway
    the context texts through (reminders), if the test reads texts."""
    clock.now = datetime.now(timezone.utc)
    w = seed(db, keyring)
    ecard(db, keyring, w.employee.id, name_of(1), id_number_of(1))
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)  # the platform reaches the bank as configured, like any institution
    bind(db, w.employee.id, BANK)
    return CreditWorld(w, Context.for_database(db, keyring, sms=sms), w.employee.id, bank)


def connect(db, keyring, pi_id: str, channel) -> None:
    """Configure how the platform reaches ``pi_id``: the settings of a connector to a sandbox (a credit bank, say)."""
    db.run(lambda c: connectors.configure(c, keyring, db.clock(), pi_id=pi_id, actor="test", **connectors.settings_of(channel)))


def relative(db, keyring, cw: CreditWorld, *, n: int = 21, name: str = "亲属甲", relation: str = "child"):
    """An adult relative, with a mutual-aid link from the holder (the family link repayment needs)."""
    person = enrol_adult(db, keyring, n=n, name=name, phone=f"139000000{n:02d}")
    number = make_id_number("440301", date(1980, 1, n), n)  # as enrol_adult made it
    db.run(lambda c: families.grant_mutual_aid(c, keyring, db.clock(), holder_id=cw.holder, relation=relation, id_number=number,
                                               name=name, actor="test"))
    return person


async def move_bank_clock(bank, days: int) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        (await client.post(f"{bank.url}/sandbox/clock", json={"days": days})).raise_for_status()


def advance(clock, bank, days: int) -> None:
    clock.advance(days=days)
    run(move_bank_clock(bank, days))


def balanced(db) -> bool:
    return db.run(lambda c: ledger.totals(c), write=False).balanced
