"""A holder's e-card bindings to admitted payment institutions (seed 002).

The platform designates no institution: a holder binds their active e-card to any admitted
institution of their region — one or several — and keeps exactly one default among the bound ones.
Each binding carries a password-free limit: cash up to it is collected without asking the holder
again; it ranges from 0.00 (always ask; the default) to MAX_PASSWORD_FREE. A cancelled e-card's
bindings end with it (cards.cancel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit
from yibao.services.people import cards
from yibao.store.sql import Sql
from yibao.store.tables import channel_configs as CC
from yibao.store.tables import ecard_bindings as B
from yibao.store.tables import payment_institutions as PI

MAX_PASSWORD_FREE = 200_000  # fen: 2000.00 yuan


def _holder_ecard(conn: Connection, holder_id: str) -> cards.Card:
    """The holder's active e-card, locked: binding changes of one card are serialised on it."""
    card = cards.active_ecard(conn, holder_id, lock=True)
    if card is None:
        raise Conflict("ecard", "no_active_ecard", "请先开通电子社保卡", "open an electronic social-security card first")
    return card


def _check_limit(limit: int) -> None:
    if not 0 <= limit <= MAX_PASSWORD_FREE:
        raise InputError("password_free_limit", "limit_out_of_range", f"免密额度应在0.00至{format_yuan(MAX_PASSWORD_FREE)}元之间",
                         f"must be between 0.00 and {format_yuan(MAX_PASSWORD_FREE)} yuan")


def _binding(conn: Connection, card_id: str, pi_id: str) -> Any:
    return conn.execute(select(B).where(B.c.card_id == card_id, B.c.payment_institution_id == pi_id)).first()


def _bound(conn: Connection, card_id: str, pi_id: str) -> Any:
    row = _binding(conn, card_id, pi_id)
    if row is None or row.status != "bound":
        raise NotFound("payment_institution_id", "not_bound", "未绑定该支付机构", "the e-card is not bound to this payment institution")
    return row


def _make_default(conn: Connection, card_id: str, pi_id: str, now: datetime) -> None:
    conn.execute(update(B).where(B.c.card_id == card_id, B.c.is_default.is_(True), B.c.payment_institution_id != pi_id)
                 .values(is_default=False, updated_at=now))
    conn.execute(update(B).where(B.c.card_id == card_id, B.c.payment_institution_id == pi_id).values(is_default=True, updated_at=now))


def _audit(conn: Connection, card: cards.Card, now: datetime, actor: str, action: str, pi_id: str, **detail: Any) -> None:
    audit.append(conn, region=card.region, actor=actor, action=action, subject=card.person_id,
                 detail={"card_id": card.id, "payment_institution_id": pi_id, **detail}, now=now)


def bind(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, password_free_limit: int = 0, make_default: bool = False,
         actor: str, connector_later: bool = False) -> list[dict[str, Any]]:
    """Bind the holder's e-card to an admitted institution of their region that the platform reaches (a connector
    configured); the first binding is the default. ``connector_later``: the demo's seed only, whose sandbox connectors are
    configured at every start of the server, before anyone can pay (sandbox/demo.py)."""
    _check_limit(password_free_limit)
    card = _holder_ecard(conn, holder_id)
    pi = pis.get(conn, pi_id)
    if pi is None or pi.region != card.region:
        raise NotFound("payment_institution_id", "not_found", "本统筹区没有该支付机构", "no such payment institution in your region")
    if pi.status != "admitted":
        raise Conflict("payment_institution_id", "not_admitted", "该支付机构未准入或已暂停，不能绑定",
                       "this payment institution is not admitted (or suspended); it cannot be bound")
    if not connector_later:
        _require_connected(conn, pi_id)
    row = _binding(conn, card.id, pi_id)
    if row is not None and row.status == "bound":
        raise Conflict("payment_institution_id", "already_bound", "已绑定该支付机构", "the e-card is already bound to this payment institution")
    first = conn.execute(select(B.c.id).where(B.c.card_id == card.id, B.c.status == "bound")).first() is None
    values = dict(status="bound", is_default=False, password_free_limit=password_free_limit, updated_at=now)
    if row is None:
        conn.execute(B.insert().values(region=card.region, card_id=card.id, payment_institution_id=pi_id, created_at=now, **values))
    else:
        conn.execute(update(B).where(B.c.id == row.id).values(**values))
    if first or make_default:
        _make_default(conn, card.id, pi_id, now)
    _audit(conn, card, now, actor, "ecard.bind", pi_id, password_free_limit=password_free_limit)
    return of_holder(conn, holder_id)


def _require_connected(conn: Connection, pi_id: str) -> None:
    """An institution the platform has no connector for cannot take a payment: neither bound nor made the default."""
    if not channel_registry.is_configured(conn, pi_id):
        raise Conflict("payment_institution_id", "not_connected", "平台尚未接通该支付机构，暂不能绑定或设为默认",
                       "the platform has no working connection to this payment institution yet: it cannot be bound or made the default")


def set_default(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> list[dict[str, Any]]:
    card = _holder_ecard(conn, holder_id)
    _bound(conn, card.id, pi_id)
    _require_connected(conn, pi_id)
    _make_default(conn, card.id, pi_id, now)
    _audit(conn, card, now, actor, "ecard.default", pi_id)
    return of_holder(conn, holder_id)


def set_limit(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, password_free_limit: int, actor: str) -> list[dict[str, Any]]:
    _check_limit(password_free_limit)
    card = _holder_ecard(conn, holder_id)
    row = _bound(conn, card.id, pi_id)
    conn.execute(update(B).where(B.c.id == row.id).values(password_free_limit=password_free_limit, updated_at=now))
    _audit(conn, card, now, actor, "ecard.limit", pi_id, password_free_limit=password_free_limit)
    return of_holder(conn, holder_id)


def unbind(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> list[dict[str, Any]]:
    """Unbind; if it was the default, the earliest remaining binding becomes the default."""
    card = _holder_ecard(conn, holder_id)
    row = _bound(conn, card.id, pi_id)
    conn.execute(update(B).where(B.c.id == row.id).values(status="unbound", is_default=False, updated_at=now))
    if row.is_default:
        successor = conn.execute(select(B.c.payment_institution_id).where(B.c.card_id == card.id, B.c.status == "bound")
                                 .order_by(B.c.created_at, B.c.id)).first()
        if successor is not None:
            _make_default(conn, card.id, successor.payment_institution_id, now)
    _audit(conn, card, now, actor, "ecard.unbind", pi_id)
    return of_holder(conn, holder_id)


def of_holder(conn: Connection, holder_id: str) -> list[dict[str, Any]]:
    """The holder's current bindings (of the active e-card), default first."""
    card = cards.active_ecard(conn, holder_id)
    if card is None:
        return []
    rows = conn.execute(select(B, PI.c.name, PI.c.kind, PI.c.status.label("institution_status"), CC.c.version.label("connector_version"))
                        .join(PI, PI.c.id == B.c.payment_institution_id)
                        .outerjoin(CC, CC.c.payment_institution_id == B.c.payment_institution_id)
                        .where(B.c.card_id == card.id, B.c.status == "bound").order_by(B.c.is_default.desc(), B.c.created_at, B.c.id)).all()
    return [{"payment_institution_id": r.payment_institution_id, "name": r.name, "kind": r.kind, "institution_status": r.institution_status,
             "connected": r.connector_version is not None and r.institution_status == "admitted",
             "default": r.is_default, "password_free_limit": format_yuan(r.password_free_limit), "updated_at": iso_utc(r.updated_at)}
            for r in rows]


# ---- the binding a payment's cash goes through ------------------------------------------------------

@dataclass(frozen=True)
class Binding:
    payment_institution_id: str
    password_free_limit: int


def default_binding(conn: Connection, payer_id: str, pi_id: str | None = None) -> Binding | None:
    """The payer's default institution (or the bound ``pi_id``), if bound through their active e-card and still admitted; the
    default must also be connected (a connector configured): one that is not is passed over for the earliest bound one that is."""
    if pi_id is None:
        r = _DEFAULT(conn, {"person_id": payer_id}).first()
    else:
        r = _BOUND_TO(conn, {"person_id": payer_id, "pi_id": pi_id}).first()
    return Binding(r.payment_institution_id, int(r.password_free_limit)) if r else None


# Asked on every payment with cash: one prepared statement (store/sql.py) through the active e-card, not two in Core.
_BINDING = """SELECT b.payment_institution_id, b.password_free_limit FROM cards c
              JOIN ecard_bindings b ON b.card_id = c.id AND b.status = 'bound'
              JOIN payment_institutions pi ON pi.id = b.payment_institution_id AND pi.status = 'admitted'{connected}
              WHERE c.person_id = :person_id AND c.kind = 'ecard' AND c.status = 'active'"""
# The default: a connected institution only (the holder's default first, else the earliest bound). An institution named
# by the request is taken as bound; whether the platform reaches it is the cash request's to find out (and say).
_DEFAULT = Sql(_BINDING.format(connected="\n              JOIN channel_configs cc ON cc.payment_institution_id = b.payment_institution_id")
               + " ORDER BY b.is_default DESC, b.created_at, b.id LIMIT 1")
_BOUND_TO = Sql(_BINDING.format(connected="") + " AND b.payment_institution_id = :pi_id")


def is_bound(conn: Connection, person_id: str, pi_id: str) -> bool:
    """Whether the person's active e-card is bound to ``pi_id``."""
    card = cards.active_ecard(conn, person_id)
    return card is not None and conn.execute(select(B.c.id).where(B.c.card_id == card.id, B.c.payment_institution_id == pi_id,
                                                                  B.c.status == "bound")).first() is not None
