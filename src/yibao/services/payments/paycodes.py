"""Dynamic payment codes (动态医保码, seed 003): issue, show again, consume at a scan.

- `issue`: a holder gets a code for their own active e-card, or a guardian for a linked child's card.
  The card's previous code dies at once (refresh on tap = issue again); the new one lives for the
  card region's policy `paycode_ttl_seconds` (180 s, as in Qingdao).
- `consume`: an institution scans a code; the platform checks the MAC, then the code's state, the
  card, the region, and marks it used with a conditional UPDATE (live → used), so of two concurrent
  scans of one code exactly one wins, on SQLite and PostgreSQL alike.
- Every refused scan is a `paycode_refusals` row. Guesses (no such code, a MAC or check digit that
  does not verify) count toward a limit per terminal and per institution; over it, scans are refused
  unseen until the window has passed. `consume` *returns* a refusal instead of raising it so the
  caller commits the row first (raising would roll the count back: unlimited guessing); `unwrap`
  raises it afterwards.

The code value is never stored or audited in clear: the platform rebuilds it from (slot, counter).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_card_no, mask_name
from yibao.domain import paycode
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, TooManyAttempts, YibaoError
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.institutions import Institution
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit
from yibao.services.care import presence, visits
from yibao.services.people import cards, families
from yibao.services.people import persons as people
from yibao.services.people.filings import filed_for
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import paycode_refusals as R
from yibao.store.tables import paycode_slots as S
from yibao.store.tables import paycodes as PC
from yibao.store.upsert import insert_ignore

# Guessing limits (guesses: no such code, bad MAC, bad check digit). Guessed values, not from a
# published rule: a cashier's honest misreads stay far below them.
WINDOW = timedelta(minutes=10)
TERMINAL_LIMIT = 5  # per terminal, when the scan names one
INSTITUTION_LIMIT = 20  # per institution, all its terminals together
PER_TERMINAL, PER_INSTITUTION = AttemptLimit(TERMINAL_LIMIT, WINDOW), AttemptLimit(INSTITUTION_LIMIT, WINDOW)


@dataclass(frozen=True)
class Issued:
    code: str
    person_id: str  # whose card
    holder_id: str  # who shows it: the person, or their guardian
    card_id: str
    card_kind: str  # ecard | physical
    counter: int
    issued_at: datetime
    expires_at: datetime
    ttl_seconds: int


@dataclass(frozen=True)
class Consumed:
    """Who a consumed code is for: what the payment flow proceeds with."""

    paycode_id: int
    person_id: str
    card_id: str
    card_kind: str
    holder_id: str
    relation: str  # self | guardian
    insured_region: str
    institution_id: str
    terminal_id: str | None
    consumed_at: datetime
    presence_id: str | None = None  # the holder's presence it stands for here (services/care/presence.py)
    presence: presence.Presence | None = field(default=None, compare=False)  # as this unit recorded it (none read back)
    person: people.Person | None = field(default=None, compare=False)  # the patient as this unit read it


_utc = as_datetime  # a row read through Core or the driver (store/sql.py): aware UTC either way


def _mac_key(keyring: Keyring) -> bytes:
    return keyring.purpose_key(paycode.MAC_PURPOSE)


# ---- issuing ------------------------------------------------------------------------------------


def _holder(conn: Connection, holder_id: str) -> tuple[people.Person, cards.Card]:
    holder = people.get(conn, holder_id)
    if holder is None or holder.status != "active":
        raise Forbidden("psn_no", "person_not_active", "参保人不存在或已停保", "the insured person does not exist or is not active")
    ecard = cards.active_ecard(conn, holder.id)
    if ecard is None:  # the code is shown from the holder's e-card, for themselves or for a child
        raise Forbidden("ecard", "ecard_required", "请先申领电子社保卡", "get an electronic social-security card first")
    return holder, ecard


def _target(conn: Connection, holder: people.Person, own_ecard: cards.Card, person_id: str | None) -> tuple[people.Person, cards.Card]:
    """The person the code is for and the card it carries: the holder's e-card, or a linked child's card."""
    if person_id is None or person_id == holder.id:
        return holder, own_ecard
    if not families.can_view(conn, holder.id, person_id):  # the same answer whether or not the person exists
        raise Forbidden("psn_no", "not_guardian", "您不是该参保人的已关联监护人，不能出示其支付码",
                        "you are not this person's linked guardian, so you cannot show their payment code")
    person = people.get(conn, person_id)
    if person is None or person.status != "active":
        raise Forbidden("psn_no", "person_not_active", "参保人不存在或已停保", "the insured person does not exist or is not active")
    card = cards.active_ecard(conn, person.id) or _active_physical(conn, person.id)
    if card is None:
        raise Conflict("psn_no", "no_active_card", "该参保人没有在用的社保卡", "this person has no active social-security card")
    return person, card


def _active_physical(conn: Connection, person_id: str) -> cards.Card | None:
    return next((c for c in cards.for_person(conn, person_id) if c.kind == "physical" and c.status == "active"), None)


def _slot(conn: Connection, card: cards.Card, now: datetime):  # noqa: ANN202
    """The card's slot row, created on its first code, locked: a card's codes are issued one at a time."""
    while True:
        row = conn.execute(select(S).where(S.c.card_id == card.id).with_for_update()).first()
        if row is not None:
            return row
        # A concurrent first issue, or a slot another card holds: either way nothing is inserted and
        # the loop looks again (and draws a new slot if this card still has none).
        insert_ignore(conn, S, dict(card_id=card.id, region=card.region, slot=f"{secrets.randbelow(10**paycode.SLOT_DIGITS):08d}",
                                    counter=0, updated_at=now, created_at=now))


def issue(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, person_id: str | None = None, actor: str) -> Issued:
    """A new code for the holder's e-card, or for a linked child's card; the card's previous code dies."""
    holder, own = _holder(conn, holder_id)
    person, card = _target(conn, holder, own, person_id)
    ttl = policy_for(card.region, now.year, field="psn_no").paycode_ttl_seconds
    slot = _slot(conn, card, now)
    counter = int(slot.counter) + 1
    conn.execute(update(S).where(S.c.card_id == card.id).values(counter=counter, updated_at=now))
    conn.execute(update(PC).where(PC.c.card_id == card.id, PC.c.status == "live").values(status="replaced", ended_at=now))
    expires_at = now + timedelta(seconds=ttl)
    conn.execute(PC.insert().values(region=card.region, card_id=card.id, counter=counter, person_id=person.id, holder_id=holder.id,
                                    status="live", expires_at=expires_at, created_at=now))
    audit.append(conn, region=card.region, actor=actor, action="paycode.issue", subject=person.id,
                 detail={"card_id": card.id, "counter": counter, "holder": holder.id}, now=now)
    return Issued(paycode.encode(_mac_key(keyring), slot.slot, counter), person.id, holder.id, card.id, card.kind, counter, now,
                  expires_at, ttl)


def current(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, person_id: str | None = None) -> Issued:
    """The live code this holder last got for the person (for a redraw or a lost response); read only."""
    holder, own = _holder(conn, holder_id)
    person, card = _target(conn, holder, own, person_id)
    row = conn.execute(select(PC).where(PC.c.card_id == card.id, PC.c.holder_id == holder.id, PC.c.status == "live")
                       .order_by(PC.c.id.desc())).first()
    if row is None or _utc(row.expires_at) <= now:
        raise NotFound("psn_no", "no_live_paycode", "当前没有有效的支付码，请刷新获取新码", "there is no live payment code; get a new one")
    slot = conn.execute(select(S.c.slot).where(S.c.card_id == card.id)).scalar_one()
    ttl = policy_for(card.region, now.year, field="psn_no").paycode_ttl_seconds
    return Issued(paycode.encode(_mac_key(keyring), slot, int(row.counter)), person.id, holder.id, card.id, card.kind, int(row.counter),
                  _utc(row.created_at), _utc(row.expires_at), ttl)


def state(conn: Connection, now: datetime, *, holder_id: str, person_id: str | None = None, counter: int) -> str:
    """What became of the code this holder was shown for the person (by its counter): "live", "used" (a counter
    scanned it), "replaced" (a newer code), "expired" — what the holder's screen polls, to take a used code away. A
    counter that is not the holder's code for the card is "unknown"; read only."""
    holder, own = _holder(conn, holder_id)
    _person, card = _target(conn, holder, own, person_id)
    row = conn.execute(select(PC.c.status, PC.c.expires_at).where(PC.c.card_id == card.id, PC.c.holder_id == holder.id,
                                                                   PC.c.counter == counter)).first()
    if row is None:
        return "unknown"
    if row.status == "live" and _utc(row.expires_at) <= now:
        return "expired"
    return str(row.status)


def issued_view(issued: Issued) -> dict:
    return {"code": issued.code, "psn_no": issued.person_id, "holder_psn_no": issued.holder_id, "card_id": issued.card_id,
            "card_kind": issued.card_kind, "issued_at": iso_utc(issued.issued_at), "expires_at": iso_utc(issued.expires_at),
            "ttl_seconds": issued.ttl_seconds}


# ---- consuming ----------------------------------------------------------------------------------


def _unknown() -> NotFound:
    return NotFound("code", "paycode_unknown", "支付码无效：不存在或未通过平台校验", "unknown payment code: no such code, or it fails verification")


def _used() -> Conflict:
    return Conflict("code", "paycode_used", "该支付码已使用，请患者刷新后出示新码", "this code has already been used; ask for a refreshed code")


def _replaced() -> Conflict:
    return Conflict("code", "paycode_replaced", "该支付码已被新码替换（已刷新），请扫描最新的码",
                    "this code was replaced by a newer one (refreshed); scan the newest code")


def _expired() -> Conflict:
    return Conflict("code", "paycode_expired", "支付码已过期，请患者刷新后出示新码", "this code has expired; ask for a refreshed code")


def _state_refusal(row, now: datetime) -> YibaoError | None:  # noqa: ANN001
    """Why a genuine code cannot be used now, if it cannot. A code replaced after it had expired was expired."""
    if row.status == "used":
        return _used()
    if row.status == "replaced":
        return _expired() if _utc(row.ended_at) >= _utc(row.expires_at) else _replaced()
    if _utc(row.expires_at) <= now:
        return _expired()
    return None


# The scan's statements as prepared SQL (store/sql.py): Core spent ~100 µs building and keying each, on every payment.
_GUESSES = Sql("""SELECT created_at FROM paycode_refusals WHERE institution_id = :institution_id AND created_at > :since AND counted = :yes
                  ORDER BY created_at DESC, id DESC LIMIT :limit""")
# Both windows in one statement when the scan names a terminal (one round trip fewer on every payment).
_BOTH_GUESSES = Sql("""SELECT 'i' AS scope, created_at FROM (SELECT created_at FROM paycode_refusals WHERE institution_id = :institution_id
                           AND created_at > :since AND counted = :yes ORDER BY created_at DESC, id DESC LIMIT :limit) AS i
                       UNION ALL
                       SELECT 't' AS scope, created_at FROM (SELECT created_at FROM paycode_refusals WHERE institution_id = :institution_id
                           AND terminal_id = :terminal_id AND created_at > :t_since AND counted = :yes
                           ORDER BY created_at DESC, id DESC LIMIT :t_limit) AS t""")
_SLOT = Sql("SELECT card_id, counter FROM paycode_slots WHERE slot = :slot")
_CODE = ("id, region, card_id, person_id, holder_id, status, expires_at, ended_at")
_CODE_OF = Sql(f"SELECT {_CODE} FROM paycodes WHERE card_id = :card_id AND counter = :counter")
_CODE_BY_ID = Sql(f"SELECT {_CODE} FROM paycodes WHERE id = :id")
_USE = Sql("""UPDATE paycodes SET status = 'used', ended_at = :now, institution_id = :institution_id, terminal_id = :terminal_id
              WHERE id = :id AND status = 'live' AND expires_at > :now RETURNING id""")


def _guesses(conn: Connection, sql: Sql, rule: AttemptLimit, now: datetime, **subject: str) -> list[datetime]:
    return [_utc(r.created_at) for r in sql(conn, {**subject, "since": rule.since(now), "yes": True, "limit": rule.limit})]


def _lockout(conn: Connection, now: datetime, institution_id: str, terminal_id: str | None) -> TooManyAttempts | None:
    """Over a limit (the terminal's, or the institution's for all its terminals): no scan is looked at while
    locked, so no new guess is counted and the lock ends when the limit-th newest guess leaves the window."""
    # The rows `attempts.failures` would read (counted guesses in the window, newest first, at most the limit), prepared.
    if terminal_id:
        rows = list(_BOTH_GUESSES(conn, {"institution_id": institution_id, "terminal_id": terminal_id, "yes": True,
                                         "since": PER_INSTITUTION.since(now), "limit": PER_INSTITUTION.limit,
                                         "t_since": PER_TERMINAL.since(now), "t_limit": PER_TERMINAL.limit}))
        waits = [PER_INSTITUTION.retry_after([_utc(r.created_at) for r in rows if r.scope == "i"], now),
                 PER_TERMINAL.retry_after([_utc(r.created_at) for r in rows if r.scope == "t"], now)]
    else:
        waits = [PER_INSTITUTION.retry_after(_guesses(conn, _GUESSES, PER_INSTITUTION, now, institution_id=institution_id), now)]
    seconds = max((w for w in waits if w is not None), default=None)
    if seconds is None:
        return None
    return TooManyAttempts("code", "too_many_attempts", f"无效支付码尝试过多，请{seconds}秒后再试",
                           f"too many invalid payment codes; try again in {seconds} s", seconds)


def _refuse(conn: Connection, now: datetime, institution: Institution, terminal_id: str | None, error: YibaoError, *, counted: bool,
            card_id: str | None = None) -> YibaoError:
    conn.execute(R.insert().values(region=institution.region, institution_id=institution.id, terminal_id=terminal_id or "",
                                   reason=error.code, counted=counted, card_id=card_id, created_at=now))
    return error


def consume(conn: Connection, keyring: Keyring, now: datetime, *, code: str, institution: Institution, terminal_id: str | None = None,
            actor: str, visit_id: str | None = None) -> Consumed | YibaoError:
    """Verify and use a scanned code once. Returns who it is for, or the refusal to raise after commit.

    The scan is the holder's presence here (services/care/presence.py: kind ``paycode``, for SCAN_TO_PAY): for
    ``visit_id`` when it names one of this institution's visits, else for the first visit it pays.

    Raises (nothing to record): a code that is not ours in form (`paycode_format`, `paycode_not_medical`),
    `too_many_attempts` while the terminal or institution is locked, and a ``visit_id`` that is not this institution's.
    """
    if terminal_id is not None and not terminal_id.strip():
        terminal_id = None
    if visit_id is not None:
        visits.get(conn, institution.id, visit_id)  # before the code is used: another institution's visit is "not found"
    try:
        parts: paycode.PaycodeParts | None = paycode.parse(code)
        misread = None
    except InputError as exc:
        if exc.code != "paycode_check_digit":
            raise
        parts, misread = None, exc
    locked = _lockout(conn, now, institution.id, terminal_id)
    if locked is not None:
        raise locked
    if parts is None:
        return _refuse(conn, now, institution, terminal_id, misread, counted=True)  # type: ignore[arg-type]

    # The slot row is untrusted until the MAC over (slot, full counter) verifies.
    slot = _SLOT(conn, {"slot": parts.slot}).first()
    counter = paycode.full_counter(parts.counter_residue, int(slot.counter)) if slot is not None else None
    if slot is None or counter is None or not paycode.verify(_mac_key(keyring), parts, counter):
        return _refuse(conn, now, institution, terminal_id, _unknown(), counted=True)
    row = _CODE_OF(conn, {"card_id": slot.card_id, "counter": counter}).first()
    if row is None:
        return _refuse(conn, now, institution, terminal_id, _unknown(), counted=True)

    card = cards.get(conn, row.card_id)  # read once: the holder's checks and the answer both need it
    person = people.get(conn, row.person_id)  # likewise: the checks, and the visit the payment opens next (`Consumed.person`)
    refusal = _state_refusal(row, now) or _holder_refusal(conn, row, institution, now, card, person)
    if refusal is not None:
        return _refuse(conn, now, institution, terminal_id, refusal, counted=False, card_id=row.card_id)

    # Single use: only one scan moves the row from live to used. A concurrent twin blocks on the row
    # (PostgreSQL) or waits its turn (SQLite), then matches nothing and reports what beat it.
    won = _USE(conn, {"id": row.id, "now": now, "institution_id": institution.id, "terminal_id": terminal_id}).first()
    if won is None:
        after = _CODE_BY_ID(conn, {"id": row.id}).first()
        return _refuse(conn, now, institution, terminal_id, _state_refusal(after, now) or _used(), counted=False, card_id=row.card_id)

    assert card is not None
    relation = "self" if row.holder_id == row.person_id else "guardian"
    present = presence.record(conn, now, kind="paycode", credential_id=str(row.id), institution=institution, person_id=row.person_id,
                              owner_id=row.holder_id, ttl=SCAN_TO_PAY, visit_id=visit_id, terminal_id=terminal_id)
    audit.append(conn, region=row.region, actor=actor, action="paycode.consume", subject=row.person_id,
                 detail={"card_id": row.card_id, "counter": counter, "holder": row.holder_id, "institution": institution.id,
                         "terminal": terminal_id, "presence": present.id}, now=now)
    return Consumed(int(row.id), row.person_id, row.card_id, card.kind, row.holder_id, relation, row.region, institution.id,
                    terminal_id, now, present.id, present, person)


_UNREAD: Any = object()


def _holder_refusal(conn: Connection, row, institution: Institution, now: datetime,  # noqa: ANN001
                    card: cards.Card | None = None, person: Any = _UNREAD) -> YibaoError | None:
    """Whether the card (read here unless given), the person, the guardian link and the region still allow this genuine code."""
    if card is None:
        card = cards.get(conn, row.card_id)
    if card is None or card.status != "active":
        return Conflict("code", "paycode_card_not_active", "该支付码对应的社保卡已挂失、注销或不在用",
                        "the card behind this code is lost, cancelled or otherwise not active")
    if person is _UNREAD:
        person = people.get(conn, row.person_id)
    if person is None or person.status != "active":
        return Forbidden("code", "paycode_person_not_active", "该参保人已停保，不能使用医保支付", "this insured person is not active")
    if row.holder_id != row.person_id and not families.can_view(conn, row.holder_id, row.person_id):
        return Forbidden("code", "paycode_guardian_unlinked", "出示该码的监护人已不再关联该少儿",
                         "the guardian who showed this code is no longer linked to the child")
    if person.region != institution.region and not filed_for(conn, person.id, institution.region, now.date()):
        return Forbidden("code", "paycode_other_region", "该参保人属其他统筹区且未在本地备案，不能在本机构使用支付码",
                         "this person is insured in another region and not filed for this one, so the code cannot be used here")
    return None


# How long a scan stays good for paying the visit it opened. The holder showed the code to this
# counter for this visit; asking for a second code minutes later adds no consent, only friction (the
# national interface likewise carries the code's ecToken from 1101 through to 2207). [G: 10 minutes]
SCAN_TO_PAY = timedelta(minutes=10)


def scanned(conn: Connection, now: datetime, *, paycode_id: int, institution: Institution) -> Consumed:
    """A code this institution scanned a little earlier, to pay with it once (一码支付 of the visit it opened).

    The row is locked: two payments racing for one scan are serialised, and the second finds the first's
    order (onecode.start). Raises: unknown here, not scanned (used) here, too old."""
    row = conn.execute(select(PC).where(PC.c.id == paycode_id).with_for_update()).first()
    if row is None or row.institution_id != institution.id or row.status != "used":
        raise NotFound("paycode_id", "scan_unknown", "本机构没有这次扫码记录，请重新扫描参保人出示的医保码",
                       "no such scan at this institution; scan the code the holder shows")
    ended = row.ended_at if row.ended_at.tzinfo else row.ended_at.replace(tzinfo=timezone.utc)
    if ended + SCAN_TO_PAY <= now:
        minutes = int(SCAN_TO_PAY.total_seconds() // 60)
        raise Conflict("paycode_id", "scan_expired", f"扫码已超过{minutes}分钟，请参保人重新出示医保码",
                       f"the scan is more than {minutes} minutes old; scan the code the holder shows now")
    card = cards.get(conn, row.card_id)
    refusal = _holder_refusal(conn, row, institution, now, card)  # a card lost or a link revoked since the scan
    if refusal is not None:
        raise refusal
    assert card is not None
    relation = "self" if row.holder_id == row.person_id else "guardian"
    present = presence.of_credential(conn, "paycode", str(row.id))
    return Consumed(int(row.id), row.person_id, row.card_id, card.kind, row.holder_id, relation, row.region, institution.id,
                    row.terminal_id, ended, present.id if present else None)


def recent_scan(conn: Connection, now: datetime, *, institution_id: str, person_id: str, visit_id: str | None = None) -> tuple[int, datetime] | None:
    """The code for ``person_id`` this institution scanned last, if within SCAN_TO_PAY and it has paid nothing yet:
    (paycode_id, until when it can pay). The cashier console offers it to pay the visit it opened; a newer
    scan of the same person supersedes it there. With ``visit_id``: only if the scan was not presented for
    another visit (its presence is live and bound to this visit or to none)."""
    from yibao.store.tables import payment_orders as O

    row = conn.execute(select(PC.c.id, PC.c.ended_at).where(
        PC.c.institution_id == institution_id, PC.c.person_id == person_id, PC.c.status == "used", PC.c.ended_at > now - SCAN_TO_PAY)
        .order_by(PC.c.id.desc()).limit(1)).first()
    if row is None or conn.execute(select(O.c.id).where(O.c.paycode_id == row.id)).first() is not None:
        return None
    present = presence.of_credential(conn, "paycode", str(row.id))
    if present is None or present.status != "live" or (visit_id is not None and present.visit_id not in (None, visit_id)):
        return None  # used by a settlement at the counter, or presented for another visit
    ended = row.ended_at if row.ended_at.tzinfo else row.ended_at.replace(tzinfo=timezone.utc)
    return int(row.id), ended + SCAN_TO_PAY


def unwrap(result: Consumed | YibaoError) -> Consumed:
    """For callers of `consume`: raise the refusal (after its unit of work has committed)."""
    if isinstance(result, YibaoError):
        raise result
    return result


def consumed_view(conn: Connection, keyring: Keyring, consumed: Consumed) -> dict:
    """What the scanning institution learns: who the code is for, masked, and who showed it."""
    person = people.require(conn, consumed.person_id)
    card = cards.get(conn, consumed.card_id)
    assert card is not None
    present = presence.get(conn, consumed.presence_id) if consumed.presence_id else None
    return {"paycode_id": consumed.paycode_id, "psn_no": person.id, "psn_name": mask_name(keyring.decrypt(person.name_enc, "name")),
            "insuplc_admdvs": person.region, "insutype": person.insurance_type, "card_id": card.id, "card_kind": card.kind,
            "card_no": mask_card_no(keyring.decrypt(card.card_no_enc, "card_no")), "holder_psn_no": consumed.holder_id,
            "relation": consumed.relation, "terminal_id": consumed.terminal_id, "consumed_at": iso_utc(consumed.consumed_at),
            "presence": presence.view(present) if present else None}


def refusals(conn: Connection, institution_id: str, limit: int = 50) -> list[dict]:
    """An institution's recent refused scans, newest first (for the cashier console and tests)."""
    rows = conn.execute(select(R).where(R.c.institution_id == institution_id).order_by(R.c.id.desc()).limit(limit)).all()
    return [{"reason": r.reason, "counted": r.counted, "terminal_id": r.terminal_id or None, "at": iso_utc(r.created_at)} for r in rows]

