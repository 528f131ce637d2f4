"""The social-security card read at a terminal with its PIN (mdtrt_cert_type 03): the card holder's presence.

A card alone proves nothing about who holds it (its number is printed on it, and numbers run in sequence),
so reading it is a look-up (services/people/lookups.py: throttled, watched); read *with its PIN*, it is its
holder's presence at that institution (services/care/presence.py, kind ``card_pin``) for one settlement that
debits the holder's account, within presence.CARD_TTL.

The card PIN [G: guessed design]: the platform keeps no separate card PIN; the holder's 6-digit payment PIN
(支付密码, set in the app) serves as the card's PIN, checked through `pins.verify` — the one place PIN checks go
through, which counts wrong ones per holder and locks them out (services/payments/pins.py). Here a wrong PIN is
also a miss in the institution's look-up throttle, so one counter cannot try PINs on card after card.

Like a scan of the payment code, a card read from a region the person is not insured in (nor filed for) is
refused: such an institution cannot debit the account by card either.

`present` runs in steps (the PIN hash is slow: computed outside any unit): `prepare` (a read), the PIN check
(`pins.verify`), then the unit it hands back — `record`, which the entrypoint runs (with its idempotency record):
it records the look-up and, for a right PIN, the presence; a refusal is *returned* so its row commits first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, YibaoError
from yibao.services import Context
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.services.care import presence, visits
from yibao.services.care.presence import Presence
from yibao.services.payments import pins
from yibao.services.people import cards, lookups
from yibao.services.people import persons as people
from yibao.services.people.filings import filed_for

CREDENTIAL_TYPE = "card_pin"


@dataclass(frozen=True)
class Read:
    """What a card read found: the card and its holder (None: no active card has this number), or why it cannot pay here."""

    number: str
    card_id: str | None
    person_id: str | None
    refusal: YibaoError | None


def _not_found() -> NotFound:
    return NotFound("card_no", "not_found", "未找到该社保卡，或卡片不可用", "no active social-security card has this number")


def prepare(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, card_no: str,
            visit_id: str | None) -> Read:
    """Read only: throttled (raises `too_many_lookups`), the card and its holder, and whether they may pay here."""
    lookups.throttle(conn, now, institution.id)
    if visit_id is not None:
        visits.get(conn, institution.id, visit_id)  # another institution's visit is "not found"
    number = card_no.strip().upper()
    card = cards.find_active(conn, keyring, number, "physical")
    if card is None:
        return Read(number, None, None, _not_found())
    person = people.get(conn, card.person_id)
    if person is None or person.status != "active":
        return Read(number, card.id, card.person_id,
                    Forbidden("card_no", "person_not_active", "该参保人已停保，不能使用医保支付", "this insured person is not active"))
    if person.region != institution.region and not filed_for(conn, person.id, institution.region, now.date()):
        return Read(number, card.id, person.id, Forbidden(
            "card_no", "card_other_region", "该参保人属其他统筹区且未在本地备案，不能在本机构读卡使用个人账户",
            "this person is insured in another region and not filed for this one, so the card cannot pay from the account here"))
    return Read(number, card.id, person.id, None)


def record(conn: Connection, now: datetime, keyring: Keyring, *, institution: Institution, read: Read, pin_ok: bool | None,
           visit_id: str | None, terminal_id: str | None, actor: str) -> Presence | YibaoError:
    """The look-up, counted whatever its outcome; a right PIN becomes the holder's presence here. A refusal is returned."""
    lookups.throttle(conn, now, institution.id)  # again: a concurrent read may have used the last look-up since `prepare`
    if read.card_id is None:
        outcome = "not_found"
    elif read.refusal is None and pin_ok is False:
        outcome = "wrong_pin"  # a miss, like a number that holds nobody
    else:
        outcome = "found"
    lookups.record(conn, keyring, now, institution=institution, credential_type=CREDENTIAL_TYPE, number=read.number, outcome=outcome,
                   actor=actor)
    if read.refusal is not None:
        return read.refusal
    assert read.card_id is not None and read.person_id is not None
    if pin_ok is None:
        return Conflict("pin", "pin_not_set", "持卡人尚未设置支付密码（即社保卡密码），请在手机上设置，或改用医保码",
                        "the card holder has not set a payment PIN (the card's PIN): set it in the app, or pay with the payment code")
    if not pin_ok:
        audit.append(conn, region=institution.region, actor=actor, action="card_pin.wrong", subject=read.person_id,
                     detail={"card_id": read.card_id, "institution": institution.id, "terminal": terminal_id}, now=now)
        return InputError("pin", "pin_wrong", "社保卡密码（支付密码）错误", "wrong card PIN (the payment PIN)")
    # Each read with its PIN is a credential of its own (the card is shown again next time).
    present = presence.record(conn, now, kind="card_pin", credential_id=f"{read.card_id}:{secrets.token_hex(8)}", institution=institution,
                              person_id=read.person_id, owner_id=read.person_id, ttl=presence.CARD_TTL, visit_id=visit_id,
                              terminal_id=terminal_id)
    audit.append(conn, region=institution.region, actor=actor, action="card_pin.present", subject=read.person_id,
                 detail={"card_id": read.card_id, "institution": institution.id, "terminal": terminal_id, "presence": present.id,
                         "visit": visit_id}, now=now)
    return present


async def present(ctx: Context, *, institution: Institution, card_no: str, pin: str, actor: str, visit_id: str | None = None,
                  terminal_id: str | None = None) -> Callable[[Connection], Presence | YibaoError]:
    """Read the card and check its PIN (outside any unit); hand back the unit that records the outcome (see `record`)."""
    pins.check_format(pin)
    if terminal_id is not None and not terminal_id.strip():
        terminal_id = None
    read = await ctx.run(lambda c: prepare(c, ctx.keyring, ctx.now(), institution=institution, card_no=card_no, visit_id=visit_id),
                         write=False)
    pin_ok = await pins.verify(ctx, read.person_id, pin) if read.refusal is None and read.person_id is not None else False
    return lambda c: record(c, ctx.now(), ctx.keyring, institution=institution, read=read, pin_ok=pin_ok, visit_id=visit_id,
                            terminal_id=terminal_id, actor=actor)


def view(conn: Connection, keyring: Keyring, p: Presence) -> dict:
    """What the terminal learns once the card and its PIN are checked: the presence, and who (as a counter sees it)."""
    return {**presence.view(p), "person": people.counter_view(people.require(conn, p.person_id), keyring, "active")}
