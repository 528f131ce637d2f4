"""Presence (到场): nobody moves a holder's money without the holder.

A personal account — the patient's own, a guardian's for a child's visit, a relative's by family mutual
aid — is debited only with a credential its owner presented at that institution for that visit:
- ``paycode``: the dynamic payment code, scanned and used up (mdtrt_cert_type 01; services/payments/paycodes.py);
- ``face``: a face authorization, a verified 1:1 live match (services/payments/face.py);
- ``card_pin``: the social-security card read at a terminal with its PIN (mdtrt_cert_type 03; services/payments/card_pin.py);
- ``app``: the owner paying a bill in the app — their own act (services/payments/bills.py);
- ``wallet``: the owner's authorisation in a wallet (医保移动支付授权: authCode → pay_auth_no), carried by the hospital's
  6202 for the one order it was bound to (services/payments/medins.py);
- ``rebill``: the items kept when some of a paid visit's items are refunded, settled again for less
  (services/payments/refunds.py): the presence that paid the visit, carried to its re-settlement once.

Whoever checks the credential records it here (`record`): the institution, whom the credential names
(``person_id``: a child, for her code), who presented it (``owner_id``: the guardian showing it), the
credential's id, a short life, and the visit when it was presented for one. The settlement that debits the
account uses it up in its own unit (`claim`): a live presence at this institution, for this visit or for
none yet (it is bound to this one), naming the account's owner. Single use: a conditional UPDATE live →
used, so of two settlements exactly one gets it; a retry of the same settlement (the same message id) is
answered with the first one's document before any of this runs. Without one: `403 presence_required`.

A credential's own flow (one-code, face payment) binds its presence to the visit it pays (`take`, `bind`):
a presence bound to visit X, or used, does not pay visit Y.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, Forbidden, NotFound
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.institutions import Institution
from yibao.services.care import visits
from yibao.store.db import unit_memo
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import presences as PR

KINDS = ("paycode", "face", "card_pin", "app", "rebill", "wallet")
# How long a presented credential may wait for its settlement. The scan's is paycodes.SCAN_TO_PAY and the
# face's the authorization's own life (their modules pass them); a card read with its PIN, the same as a scan.
CARD_TTL = timedelta(minutes=10)  # [G: as a scan]
APP_TTL = timedelta(minutes=10)  # used in the unit that records it; the life only bounds a row left live
REBILL_TTL = timedelta(minutes=10)  # the kept items are settled again right after the refund


@dataclass(frozen=True)
class Presence:
    id: str
    region: str
    kind: str
    credential_id: str
    institution_id: str
    visit_id: str | None
    person_id: str
    owner_id: str
    terminal_id: str | None
    status: str
    expires_at: datetime
    setl_id: str | None

    def covers(self, owner_id: str) -> bool:
        """Whether this credential stands for ``owner_id``: who presented it, or whom it names (a guardian showing a
        child's code is present for the child too)."""
        return owner_id in (self.owner_id, self.person_id)


_utc = as_datetime  # a row read through Core or the driver (store/sql.py): aware UTC either way


def _row(r) -> Presence:  # noqa: ANN001
    return Presence(r.id, r.region, r.kind, r.credential_id, r.institution_id, r.visit_id, r.person_id, r.owner_id, r.terminal_id or None,
                    r.status, _utc(r.expires_at), r.setl_id)


def required(field: str = "account") -> Forbidden:
    """The refusal of a debit nobody present has authorised: what to present, in words."""
    return Forbidden(field, "presence_required",
                     "从个人账户支付须账户所有人本人到场：请扫描其出示的医保码、刷脸核验、读取其社保卡并由其输入密码，或由其在手机上确认支付",
                     "paying from a personal account needs its owner present: scan the payment code they show, verify their face, "
                     "read their social-security card with its PIN, or have them confirm the payment in the app")


def record(conn: Connection, now: datetime, *, kind: str, credential_id: str, institution: Institution, person_id: str, owner_id: str,
           ttl: timedelta, visit_id: str | None = None, terminal_id: str | None = None) -> Presence:
    """A credential was presented here (its checker calls this in the unit that checked it). ``visit_id``: the
    visit it was presented for (one of this institution's), else it binds to the first visit it pays."""
    assert kind in KINDS
    if visit_id is not None:
        visits.get(conn, institution.id, visit_id)  # another institution's visit is "not found"
    presence_id = "PR" + secrets.token_hex(11).upper()
    _INSERT(conn, dict(id=presence_id, region=institution.region, kind=kind, credential_id=credential_id, institution_id=institution.id,
                       visit_id=visit_id, person_id=person_id, owner_id=owner_id, terminal_id=terminal_id, expires_at=now + ttl,
                       created_at=now))
    return Presence(presence_id, institution.region, kind, credential_id, institution.id, visit_id, person_id, owner_id, terminal_id or None,
                    "live", now + ttl, None)  # as inserted: no read back


# On every one-code payment (the scan records, the flow binds): prepared SQL (store/sql.py), not Core (~100 µs each).
_INSERT = Sql("""INSERT INTO presences (id, region, kind, credential_id, institution_id, visit_id, person_id, owner_id, terminal_id, status,
                 expires_at, created_at) VALUES (:id, :region, :kind, :credential_id, :institution_id, :visit_id, :person_id, :owner_id,
                 :terminal_id, 'live', :expires_at, :created_at)""")
_GET = Sql("""SELECT id, region, kind, credential_id, institution_id, visit_id, person_id, owner_id, terminal_id, status, expires_at, setl_id
              FROM presences WHERE id = :id""")
_BIND = Sql("UPDATE presences SET visit_id = :visit_id WHERE id = :id")


def get(conn: Connection, presence_id: str) -> Presence | None:
    r = _GET(conn, {"id": presence_id}).first()
    return _row(r) if r else None


def of_credential(conn: Connection, kind: str, credential_id: str) -> Presence | None:
    r = conn.execute(select(PR).where(PR.c.kind == kind, PR.c.credential_id == credential_id)).first()
    return _row(r) if r else None


def _refusal(p: Presence | None, now: datetime, field: str, visit_id: str | None) -> Exception | None:
    if p is None:
        return NotFound(field, "presence_unknown", "本机构没有这次出示凭证的记录，请参保人重新出示", "no such presented credential here; ask for it again")
    if p.status == "used":
        return Conflict(field, "presence_used", "该凭证已用于一次结算，请参保人重新出示", "this credential was already used for a settlement; "
                        "ask the holder to present one again")
    if p.expires_at <= now:
        return Conflict(field, "presence_expired", "出示的凭证已过期，请参保人重新出示", "the presented credential has expired; ask for it again")
    if visit_id is not None and p.visit_id is not None and p.visit_id != visit_id:
        return Conflict(field, "presence_other_visit", "该凭证是为另一次就诊出示的，不能用于本次就诊",
                        "this credential was presented for another visit and cannot pay this one")
    return None


def take(conn: Connection, now: datetime, *, kind: str, credential_id: str, institution_id: str, field: str,
         visit_id: str | None = None) -> Presence:
    """The live presence of this credential here, locked (a flow about to bind it: call before the unit's first audit
    entry, so it takes the row before the audit head, as a settlement does). Raises when it is used, expired, another
    institution's or (with ``visit_id``) presented for another visit."""
    r = conn.execute(select(PR).where(PR.c.kind == kind, PR.c.credential_id == credential_id, PR.c.institution_id == institution_id)
                     .with_for_update()).first()
    p = _row(r) if r else None
    refusal = _refusal(p, now, field, visit_id)
    if refusal is not None:
        raise refusal
    assert p is not None
    return p


def bind(conn: Connection, now: datetime, presence: Presence, *, visit_id: str, field: str) -> Presence:
    """Bind a taken presence to the visit its flow pays (refused if presented for another)."""
    refusal = _refusal(presence, now, field, visit_id)
    if refusal is not None:
        raise refusal
    memo = unit_memo(conn)
    if memo is not None:  # the settlement that follows in this unit tries this one first, by its id (`claim`)
        memo[("presence", visit_id)] = presence.id
    if presence.visit_id is None:
        _BIND(conn, {"id": presence.id, "visit_id": visit_id})
        return replace(presence, visit_id=visit_id)  # the row as this unit now has it: no read back
    return presence


def _candidates(conn: Connection, now: datetime, institution_id: str, visit_id: str, owner_id: str) -> list[Presence]:
    """Live presences here for this visit (first) or for none yet, standing for ``owner_id``: oldest first."""
    rows = conn.execute(select(PR).where(
        PR.c.institution_id == institution_id, PR.c.status == "live", PR.c.expires_at > now,
        or_(PR.c.visit_id == visit_id, PR.c.visit_id.is_(None)), or_(PR.c.owner_id == owner_id, PR.c.person_id == owner_id))
        .order_by(PR.c.created_at, PR.c.id)).all()
    found = [_row(r) for r in rows]
    return [p for p in found if p.visit_id == visit_id] + [p for p in found if p.visit_id is None]


def covered(conn: Connection, now: datetime, *, institution_id: str, visit_id: str, owner_id: str) -> Presence | None:
    """The presence a settlement of this visit debiting ``owner_id``'s account would use now, if any (read only: the
    pre-settlement shows the account share, hence the balance, only after presence)."""
    found = _candidates(conn, now, institution_id, visit_id, owner_id)
    return found[0] if found else None


# The settle path's statements (see yibao.store.sql for why these are not Core).
_CANDIDATES = Sql("""SELECT id FROM presences WHERE institution_id = :institution_id AND status = 'live' AND expires_at > :now
                     AND (visit_id = :visit_id OR visit_id IS NULL) AND (owner_id = :owner_id OR person_id = :owner_id)
                     ORDER BY CASE WHEN visit_id IS NULL THEN 1 ELSE 0 END, created_at, id""")
_USE = Sql("""UPDATE presences SET status = 'used', used_at = :now, visit_id = :visit_id, setl_id = :setl_id
              WHERE id = :id AND status = 'live' AND expires_at > :now AND (visit_id = :visit_id OR visit_id IS NULL)
              RETURNING id, kind""")
_USE_BOUND = Sql("""UPDATE presences SET status = 'used', used_at = :now, setl_id = :setl_id
                    WHERE id = :id AND institution_id = :institution_id AND status = 'live' AND expires_at > :now
                    AND visit_id = :visit_id AND (owner_id = :owner_id OR person_id = :owner_id) RETURNING id, kind""")


@dataclass(frozen=True)
class Claimed:
    id: str
    kind: str


def claim(conn: Connection, now: datetime, *, institution_id: str, visit_id: str, owner_id: str, setl_id: str,
          field: str = "account", presence_id: str | None = None) -> Claimed:
    """Use a presence up for the settlement ``setl_id`` of this visit, debiting ``owner_id``'s account (the settlement's
    unit): the one this unit bound to the visit (`bind`), else one bound to this visit, else the oldest bound to none (it
    is bound to this one); ``presence_id``: that one only (a flow that recorded its own). Of two settlements racing for
    one presence, one wins; the other tries the next or is refused (`presence_required`)."""
    ids = {"institution_id": institution_id, "visit_id": visit_id, "owner_id": owner_id, "now": now}
    memo = unit_memo(conn, create=False)
    bound = memo.pop(("presence", visit_id), None) if memo else None
    if bound is not None and presence_id in (None, bound):
        # The one this unit's flow bound to the visit (the code it scanned), used at once by its id: a candidate for this
        # visit whatever the others are, and one statement where the search took two. Not usable (another owner's): search.
        won = _USE_BOUND(conn, {**ids, "id": bound, "setl_id": setl_id}).first()
        if won is not None:
            return Claimed(won.id, won.kind)
    for candidate in [c for c in _CANDIDATES(conn, ids) if presence_id is None or c.id == presence_id]:
        won = _USE(conn, {"id": candidate.id, "visit_id": visit_id, "setl_id": setl_id, "now": now}).first()
        if won is not None:
            return Claimed(won.id, won.kind)
    raise required(field)


def carry(conn: Connection, now: datetime, *, setl_id: str, institution: Institution, visit_id: str, credential_id: str) -> Presence | None:
    """The presence that paid ``setl_id``, carried once to the re-settlement of the items kept after a refund of some
    of them (kind ``rebill``): the owner was present for this visit, and it is settled again for less. None when the
    settlement used no presence (it debited no account)."""
    r = conn.execute(select(PR).where(PR.c.setl_id == setl_id)).first()
    if r is None:
        return None
    paid = _row(r)
    return record(conn, now, kind="rebill", credential_id=credential_id, institution=institution, person_id=paid.person_id,
                  owner_id=paid.owner_id, ttl=REBILL_TTL, visit_id=visit_id, terminal_id=paid.terminal_id)


def live_for_visit(conn: Connection, now: datetime, *, institution_id: str, visit_id: str, person_id: str) -> list[Presence]:
    """The live presences a settlement of this visit could use — bound to it, or to no visit yet and naming or presented
    by its patient ``person_id`` — for the cashier's page."""
    rows = conn.execute(select(PR).where(
        PR.c.institution_id == institution_id, PR.c.status == "live", PR.c.expires_at > now,
        or_(PR.c.visit_id == visit_id, (PR.c.visit_id.is_(None)) & or_(PR.c.person_id == person_id, PR.c.owner_id == person_id)))
        .order_by(PR.c.created_at)).all()
    return [_row(r) for r in rows]


def view(p: Presence) -> dict:
    return {"presence_id": p.id, "kind": p.kind, "mdtrt_id": p.visit_id, "psn_no": p.person_id, "owner_psn_no": p.owner_id,
            "status": p.status, "expires_at": iso_utc(p.expires_at)}
