"""What the pages show of a payment order (read-only): the service's receipt (`payments.receipt`)
with the names a reader needs — the hospital, the patient (masked; in full to a holder reading about their own
family: ``reader_id``), the payment institution."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from yibao.runtime.platform import Platform
from yibao.services.agency import institutions
from yibao.services.agency import payment_institutions as pis
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.services.people import families

TERMINAL = "web-cashier"  # the cashier console's terminal id: code guesses and face attempts are limited per terminal
CHECKING = ("支付结果确认中", "The payment's outcome is being checked", "notice")  # said (a notice) when a payment has not ended yet


def view(conn: Connection, p: Platform, order: Order, *, reader_id: str | None = None) -> dict[str, Any]:
    doc = payments.receipt(conn, order)
    inst = institutions.get(conn, order.institution_id)
    pi = pis.get(conn, order.payment_institution_id) if order.payment_institution_id else None
    return {**doc, "institution_name": inst.name if inst else order.institution_id,
            "patient": families.display_name(conn, p.keyring, reader_id=reader_id, person_id=order.person_id),
            "for_child": order.payer_id != order.person_id, "payment_institution_name": pi.name if pi else None}
