"""Presence for tests (services/care/presence.py): the account owner's card and PIN, and the card read with it over
HTTP; and, for tests about what a settlement does once its owner is present, that presence recorded as the
card reader's check records it."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.support.identity import active_card
from yibao.crypto.pii import Keyring
from yibao.services.agency.institutions import Institution
from yibao.services.payments import pins as payment_pins
from yibao.store.db import Database
from yibao.store.tables import cards as C

PIN = "135790"


def present(db: Database, inst: Institution, owner_id: str, visit_id: str | None = None, *, person_id: str | None = None) -> str:
    """Set-up: ``owner_id`` presented a credential at ``inst`` (for ``visit_id``) — recorded as the card reader's check
    (card_pin.record) records it. Returns the presence id."""
    from yibao.services.care import presence

    return db.run(lambda c: presence.record(c, db.clock(), kind="card_pin", credential_id=f"test:{uuid.uuid4().hex}", institution=inst,
                                            person_id=person_id or owner_id, owner_id=owner_id, ttl=presence.CARD_TTL, visit_id=visit_id)).id


def card_with_pin(db: Database, keyring: Keyring, person_id: str, *, card_no: str | None = None, pin: str = PIN) -> str:
    """The person's active physical card (made if they have none) and their payment PIN (set if none): the card number."""
    number = card_no or f"TP{int(uuid.uuid5(uuid.NAMESPACE_OID, person_id)) % 10**10:010d}"
    has_card = db.run(lambda c: c.execute(select(C.c.id).where(C.c.person_id == person_id, C.c.kind == "physical",
                                                               C.c.status == "active")).first(), write=False)
    if has_card is None:
        active_card(db, keyring, person_id, card_no=number)
    if db.run(lambda c: payment_pins.stored(c, person_id), write=False) is None:
        salt = payment_pins.new_salt()
        h = payment_pins.pin_hash(keyring, pin, salt)
        db.run(lambda c: payment_pins.set_pin(c, db.clock(), person_id=person_id, salt=salt, new_hash=h, old_candidate=None, old_salt=None,
                                              actor="test"))
    return number


def present_card_over_http(client, headers: dict[str, str], card_no: str, pin: str = PIN, visit_id: str | None = None):  # noqa: ANN001, ANN201
    """POST /api/v1/his/card-presentations: the response."""
    body = {"card_no": card_no, "pin": pin, "terminal_id": "T1", **({"mdtrt_id": visit_id} if visit_id else {})}
    return client.post("/api/v1/his/card-presentations", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
