"""What the pages show of a payment order (read-only): the service's receipt (`payments.receipt`)
with the names a reader needs — the hospital, the patient (masked), the payment institution — and
the PIN flows the /app pages run (the same service calls as api/routers/patient.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Connection

from yibao.runtime.platform import Platform
from yibao.services.agency import institutions
from yibao.services.agency import payment_institutions as pis
from yibao.services.payments import flow as payment_flow
from yibao.services.payments import orders as payments
from yibao.services.payments import pins as payment_pins
from yibao.services.payments.orders import Order
from yibao.services.people import persons as people

TERMINAL = "web-cashier"  # the cashier console's terminal id: code guesses and face attempts are limited per terminal
CHECKING = ("支付结果确认中", "The payment's outcome is being checked")  # said when a payment has not ended yet


def view(conn: Connection, p: Platform, order: Order) -> dict[str, Any]:
    doc = payments.receipt(conn, order)
    inst = institutions.get(conn, order.institution_id)
    pi = pis.get(conn, order.payment_institution_id) if order.payment_institution_id else None
    return {**doc, "institution_name": inst.name if inst else order.institution_id,
            "patient": people.masked_view(people.require(conn, order.person_id), p.keyring)["psn_name"],
            "for_child": order.payer_id != order.person_id, "payment_institution_name": pi.name if pi else None}


async def set_pin(p: Platform, *, person_id: str, pin: str, old_pin: str | None, actor: str) -> dict[str, Any]:
    """Set or change the payment PIN, as POST /api/v1/patient/payment-pin does: the slow hashes off the
    event loop and outside any unit; a wrong old PIN is counted (committed) and then raised."""
    payment_pins.check_format(pin)
    payment_pins.check_strength(pin)
    if old_pin is not None:
        payment_pins.check_format(old_pin, "old_pin")
    current = await p.run(lambda c: payment_pins.stored(c, person_id), write=False)
    old = None
    if current is not None and old_pin is not None:
        old = await asyncio.to_thread(payment_pins.pin_hash, p.keyring, old_pin, current.salt)
    salt = payment_pins.new_salt()
    new_hash = await asyncio.to_thread(payment_pins.pin_hash, p.keyring, pin, salt)
    now = p.now()
    result = await p.run(lambda c: payment_pins.set_pin(c, now, person_id=person_id, salt=salt, new_hash=new_hash, old_candidate=old,
                                                        old_salt=current.salt if current else None, actor=actor))
    if isinstance(result, Exception):
        raise result
    return result


async def confirm(p: Platform, *, order_id: str, payer_id: str, pin: str, actor: str) -> Order:
    """The holder's PIN for a waiting payment; then the cash is collected (payment_flow.confirm)."""
    return await payment_flow.confirm(p.payments(actor), order_id=order_id, payer_id=payer_id, pin=pin, actor=actor)


