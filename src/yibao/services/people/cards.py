"""Social-security cards (seed 003): physical cards made by the agency, and the electronic card.

Physical card: status in_production → issued → active, then lost (report loss) and back to active when
found (解挂, `report_found`); cancelled from any status by the holder. A lost card is replaced (补卡,
`replace` at the agency's counter, `replace_own` by the holder in the app): a new card in production. While in production it moves through accepted → printing → mailed →
ready; only a ready card can be issued. The photo is uploaded before printing. The e-card is
issued active, only to a holder who passed real-name and real-person authentication, one live
e-card per person. Every transition is a card_events row; the holder sees the timeline.

Card numbers are stored encrypted with a keyed hash, so `people.find_by_card_no` finds an
active card's holder without the number in clear. Responses show numbers masked.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_card_no
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.formats.timefmt import iso_utc
from yibao.services.books import audit
from yibao.services.people import persons as people
from yibao.store.rows import one_or
from yibao.store.sql import Sql, as_datetime
from yibao.store.tables import card_events as E
from yibao.store.tables import cards as C
from yibao.store.tables import ecard_bindings as B
from yibao.store.tables import persons as P

STAGES = ("accepted", "printing", "mailed", "ready")
LIVE = ("in_production", "issued", "active")  # a person holds at most one physical card in these
MAX_PHOTO_BYTES = 200 * 1024
MIN_PHOTO_BYTES = 64
_CARD_NO = re.compile(r"^[A-Z0-9]{8,20}$")


@dataclass(frozen=True)
class Card:
    id: str
    region: str
    person_id: str
    kind: str
    financial: bool
    status: str
    production_stage: str | None
    has_photo: bool
    card_no_enc: bytes
    created_at: datetime
    updated_at: datetime


def _card(r) -> Card:  # noqa: ANN001
    return Card(r.id, r.region, r.person_id, r.kind, r.financial, r.status, r.production_stage, r.photo is not None,
                bytes(r.card_no_enc), r.created_at, r.updated_at)


def _not_found() -> NotFound:
    return NotFound("card_id", "not_found", "卡片不存在", "card not found")


# Every payment code asks for its card: prepared SQL (store/sql.py), and never the photo itself.
_GET = Sql("""SELECT id, region, person_id, kind, financial, status, production_stage, photo IS NOT NULL AS has_photo, card_no_enc,
              created_at, updated_at FROM cards WHERE id = :id""")
_GET_LOCKED = Sql(_GET.text + " {lock}")


def get(conn: Connection, card_id: str, *, lock: bool = False) -> Card | None:
    r = (_GET_LOCKED if lock else _GET)(conn, {"id": card_id}).first()
    if r is None:
        return None
    return Card(r.id, r.region, r.person_id, r.kind, bool(r.financial), r.status, r.production_stage, bool(r.has_photo),
                bytes(r.card_no_enc), as_datetime(r.created_at), as_datetime(r.updated_at))  # type: ignore[arg-type]


def _own(conn: Connection, card_id: str, holder_id: str) -> Card:
    """The holder's own card, locked; another person's card is 'not found' (never say whose)."""
    card = get(conn, card_id, lock=True)
    if card is None or card.person_id != holder_id:
        raise _not_found()
    return card


def _event(conn: Connection, card: Card, now: datetime, event: str, to_status: str | None, actor: str) -> None:
    conn.execute(E.insert().values(region=card.region, card_id=card.id, event=event, from_status=card.status,
                                   to_status=to_status or card.status, actor=actor, created_at=now))


def _move(conn: Connection, card: Card, now: datetime, event: str, actor: str, **values: Any) -> Card:
    conn.execute(update(C).where(C.c.id == card.id).values(updated_at=now, **values))
    _event(conn, card, now, event, values.get("status"), actor)
    return get(conn, card.id)  # type: ignore[return-value]


def _lock_person(conn: Connection, person_id: str) -> people.Person:
    """Serialise card issue per person (a second live card or e-card must not slip in concurrently)."""
    if conn.execute(select(P.c.id).where(P.c.id == person_id).with_for_update()).first() is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return people.require(conn, person_id)


def _new_number(conn: Connection, keyring: Keyring, prefix: str, digits: int) -> str:
    while True:
        number = f"{prefix}{secrets.randbelow(10**digits):0{digits}d}"
        if conn.execute(select(C.c.id).where(C.c.card_no_hash == keyring.lookup_hash(number))).first() is None:
            return number


def _insert(conn: Connection, keyring: Keyring, now: datetime, *, person: people.Person, kind: str, number: str, financial: bool,
            status: str, stage: str | None, event: str, actor: str) -> Card:
    card_id = f"CD{secrets.token_hex(9)}"
    conn.execute(C.insert().values(id=card_id, region=person.region, person_id=person.id, kind=kind,
                                   card_no_enc=keyring.encrypt(number, "card_no"), card_no_hash=keyring.lookup_hash(number),
                                   financial=financial, status=status, production_stage=stage, updated_at=now, created_at=now))
    conn.execute(E.insert().values(region=person.region, card_id=card_id, event=event, from_status=None, to_status=status,
                                   actor=actor, created_at=now))
    return get(conn, card_id)  # type: ignore[return-value]


def create_physical(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, financial: bool, actor: str,
                    card_no: str | None = None) -> Card:
    """The agency accepts a card application: a new physical card, in production (stage accepted)."""
    person = _lock_person(conn, person_id)
    if card_no is not None:
        card_no = card_no.strip().upper()
        if not _CARD_NO.match(card_no):
            raise InputError("card_no", "invalid_card_no", "社保卡号应为8–20位大写字母或数字", "must be 8–20 capital letters or digits")
        if conn.execute(select(C.c.id).where(C.c.card_no_hash == keyring.lookup_hash(card_no))).first():
            raise Conflict("card_no", "card_no_taken", "该卡号已被使用", "this card number is already in use")
    live = conn.execute(select(C.c.id).where(C.c.person_id == person.id, C.c.kind == "physical", C.c.status.in_(LIVE))).first()
    if live:
        raise Conflict("psn_no", "card_exists", "该参保人已有在制或在用的社保卡，须先挂失或注销",
                       "this person already has a card in production or in use; report it lost or cancel it first")
    # a generated number is the region code and six digits: 12 characters like the cards already issued (D4403000011),
    # so it shows masked the same way (first 2, six stars, last 4) beside them
    number = card_no or _new_number(conn, keyring, person.region, 6)
    return _insert(conn, keyring, now, person=person, kind="physical", number=number, financial=financial, status="in_production",
                   stage="accepted", event="created", actor=actor)


def advance_production(conn: Connection, now: datetime, *, card_id: str, stage: str, actor: str) -> Card:
    """Record the next production stage; stages are passed in order, none skipped."""
    if stage not in STAGES[1:]:
        raise InputError("stage", "invalid_choice", "制卡进度应为 printing | mailed | ready", "must be printing, mailed or ready")
    card = get(conn, card_id, lock=True)
    if card is None or card.kind != "physical":
        raise _not_found()
    if card.status != "in_production":
        raise Conflict("card_id", "not_in_production", "该卡不在制卡中", f"the card is {card.status}, not in production")
    after = STAGES.index(card.production_stage or "accepted") + 1
    expected = STAGES[after] if after < len(STAGES) else None
    if stage != expected:
        raise Conflict("stage", "stage_out_of_order", f"制卡进度须按顺序推进，下一步应为 {expected}",
                       f"production stages go in order; the next one is {expected}")
    return _move(conn, card, now, f"stage_{stage}", actor, production_stage=stage)


def issue(conn: Connection, now: datetime, *, card_id: str, actor: str) -> Card:
    """Hand over a ready card: in_production → issued."""
    card = get(conn, card_id, lock=True)
    if card is None or card.kind != "physical":
        raise _not_found()
    if card.status != "in_production" or card.production_stage != "ready":
        raise Conflict("card_id", "not_ready", "卡片尚未制成，不能发放", "the card is not ready to be issued")
    return _move(conn, card, now, "issued", actor, status="issued")


def replace(conn: Connection, keyring: Keyring, now: datetime, *, card_id: str, actor: str, report_loss: bool = False) -> Card:
    """Replacement after loss (补卡): the agency makes a new physical card for a lost one. The lost card stays lost (it
    pays nothing); the new one starts in production (accepted), a financial card again if the old one was. An active
    or issued card is reported lost at the counter first, with ``report_loss`` (the holder is there in person). Once
    per lost card: the new card is the person's live card, and a second one is refused as any second card is."""
    card = get(conn, card_id, lock=True)
    if card is None or card.kind != "physical":
        raise _not_found()
    if card.status in ("active", "issued") and report_loss:
        card = _move(conn, card, now, "loss_reported", actor, status="lost")
    elif card.status != "lost":
        raise Conflict("card_id", "not_lost", f"只有已挂失的卡可以补办（该卡状态：{card.status}）；卡片遗失请先挂失",
                       f"only a card reported lost can be replaced (this one is {card.status}); report the loss first")
    if conn.execute(select(E.c.id).where(E.c.card_id == card.id, E.c.event == "replaced")).first() is not None:
        raise Conflict("card_id", "already_replaced", "该卡已补办过新卡", "a new card was already made for this one")
    new = create_physical(conn, keyring, now, person_id=card.person_id, financial=card.financial, actor=actor)
    _event(conn, card, now, "replaced", None, actor)
    audit.append(conn, region=card.region, actor=actor, action="card.replace", subject=card.person_id,
                 detail={"lost_card_id": card.id, "card_id": new.id, "reported_at_counter": report_loss}, now=now)
    return new


def find_holder(conn: Connection, keyring: Keyring, now: datetime, *, query: str, actor: str) -> people.Person:
    """An operator's look-up for the card counter: a person number (psn_no), or an 18-character ID number found by its
    keyed hash — the latter audited as a read of PII."""
    query = (query or "").strip().upper()
    if not query or len(query) > 24:
        raise InputError("query", "required", "请输入人员编号或身份证号", "enter a person number (psn_no) or an ID number")
    person = people.get(conn, query)
    if person is None and len(query) == 18:
        person = people.find_by_id_number(conn, keyring, query)
        if person is not None:
            audit.append(conn, region=person.region, actor=actor, action="pii.operator_lookup", subject=person.id,
                         detail={"by": "id_number", "purpose": "cards"}, now=now)
    if person is None:
        raise NotFound("query", "not_found", "未找到该参保人（人员编号或身份证号）", "no insured person with this person number or ID number")
    return person


def activate(conn: Connection, now: datetime, *, card_id: str, holder_id: str, actor: str) -> Card:
    card = _own(conn, card_id, holder_id)
    if card.status != "issued":
        raise Conflict("card_id", "not_issued", "只有已发放的卡可以激活", f"only an issued card can be activated; this one is {card.status}")
    return _move(conn, card, now, "activated", actor, status="active")


def report_loss(conn: Connection, now: datetime, *, card_id: str, holder_id: str, actor: str) -> Card:
    card = _own(conn, card_id, holder_id)
    if card.status != "active":
        raise Conflict("card_id", "not_active", "只有在用的卡可以挂失", f"only an active card can be reported lost; this one is {card.status}")
    card = _move(conn, card, now, "loss_reported", actor, status="lost")
    _unbind_all(conn, card, now, actor)
    return card


def report_found(conn: Connection, now: datetime, *, card_id: str, holder_id: str, actor: str) -> Card:
    """解挂: the holder found the card again — lost → active. Not once a new card was made for it (补卡: the new card is
    the live one), and not while another card of the kind is live (a second e-card, or a physical card in production
    or in use). An e-card's bindings, ended by the loss, stay ended: the holder binds again."""
    card = _own(conn, card_id, holder_id)
    if card.status != "lost":
        raise Conflict("card_id", "not_lost", "只有已挂失的卡可以解挂", f"only a card reported lost can be reported found; this one is {card.status}")
    if conn.execute(select(E.c.id).where(E.c.card_id == card.id, E.c.event == "replaced")).first() is not None:
        raise Conflict("card_id", "already_replaced", "该卡已补办新卡，不能解挂", "a new card was made for this one; it cannot be reported found")
    _lock_person(conn, card.person_id)
    live = ("active",) if card.kind == "ecard" else LIVE
    other = conn.execute(select(C.c.id).where(C.c.person_id == card.person_id, C.c.kind == card.kind, C.c.id != card.id,
                                              C.c.status.in_(live))).first()
    if other is not None:
        raise Conflict("card_id", "card_exists", "已有另一张在制或在用的同类卡，不能解挂", "another card of this kind is in production or in use")
    card = _move(conn, card, now, "found", actor, status="active")
    audit.append(conn, region=card.region, actor=actor, action="card.found", subject=card.person_id, detail={"card_id": card.id}, now=now)
    return card


def replace_own(conn: Connection, keyring: Keyring, now: datetime, *, card_id: str, holder_id: str, actor: str) -> Card:
    """补卡 by the holder in the app: their own lost physical card replaced as at the counter (`replace`); an active card
    is reported lost first (挂失), here as in the counter's flow. A lost e-card is not replaced: a new one is issued."""
    card = _own(conn, card_id, holder_id)
    if card.kind != "physical":
        raise Conflict("card_id", "not_physical", "电子社保卡无需补卡，请重新申领", "an e-card is not replaced: issue a new one")
    return replace(conn, keyring, now, card_id=card.id, actor=actor)


def cancel(conn: Connection, now: datetime, *, card_id: str, holder_id: str, actor: str) -> Card:
    """Cancel from any status and from anywhere (seed 003: no trip to the issuing city)."""
    card = _own(conn, card_id, holder_id)
    if card.status == "cancelled":
        raise Conflict("card_id", "already_cancelled", "该卡已注销", "the card is already cancelled")
    card = _move(conn, card, now, "cancelled", actor, status="cancelled")
    _unbind_all(conn, card, now, actor)
    return card


def _unbind_all(conn: Connection, card: Card, now: datetime, actor: str) -> None:
    """A dead e-card pays nothing: its bindings end with it."""
    if card.kind == "ecard":
        conn.execute(update(B).where(B.c.card_id == card.id, B.c.status == "bound").values(status="unbound", is_default=False,
                                                                                            updated_at=now))
        audit.append(conn, region=card.region, actor=actor, action="ecard.unbind_all", subject=card.person_id,
                     detail={"card_id": card.id, "reason": card.status}, now=now)


def photo_type(data: bytes) -> str:
    """The image type from its magic bytes; only PNG and JPEG, size-limited."""
    if len(data) > MAX_PHOTO_BYTES:
        raise InputError("photo", "photo_too_large", f"照片不能超过{MAX_PHOTO_BYTES // 1024}KB", f"the photo must be at most {MAX_PHOTO_BYTES // 1024} KB")
    if len(data) >= MIN_PHOTO_BYTES and data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return "image/png"
    if len(data) >= MIN_PHOTO_BYTES and data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "image/jpeg"
    raise InputError("photo", "photo_type", "照片须为PNG或JPEG图像", "the photo must be a PNG or JPEG image")


def decode_photo(photo_b64: str) -> bytes:
    try:
        return base64.b64decode(photo_b64, validate=True)
    except ValueError:
        raise InputError("photo", "invalid_base64", "照片应为base64编码", "the photo must be base64-encoded") from None


def upload_photo(conn: Connection, keyring: Keyring, now: datetime, *, card_id: str, holder_id: str, data: bytes, actor: str) -> Card:
    """The holder's photo for a card still being made; the image is stored encrypted (a face is PII)."""
    kind = photo_type(data)
    card = _own(conn, card_id, holder_id)
    if card.kind != "physical" or card.status != "in_production" or card.production_stage != "accepted":
        raise Conflict("card_id", "photo_locked", "只有尚未开始印制的实体卡可以上传照片",
                       "a photo can be uploaded only for a physical card whose printing has not started")
    blob = keyring.encrypt(base64.b64encode(data).decode("ascii"), "card_photo")
    conn.execute(update(C).where(C.c.id == card.id).values(photo=blob, photo_type=kind, updated_at=now))
    _event(conn, card, now, "photo_uploaded", None, actor)
    return get(conn, card.id)  # type: ignore[return-value]


def read_photo(conn: Connection, keyring: Keyring, now: datetime, *, card_id: str, holder_id: str, actor: str) -> tuple[bytes, str]:
    """The photo in clear, for its holder; audited as a read of PII."""
    card = _own(conn, card_id, holder_id)
    row = conn.execute(select(C.c.photo, C.c.photo_type).where(C.c.id == card.id)).one()
    if row.photo is None:
        raise NotFound("photo", "no_photo", "该卡没有照片", "the card has no photo")
    audit.append(conn, region=card.region, actor=actor, action="pii.card_photo", subject=card.person_id, detail={"card_id": card.id}, now=now)
    return base64.b64decode(keyring.decrypt(bytes(row.photo), "card_photo")), row.photo_type


def active_ecard(conn: Connection, person_id: str, *, lock: bool = False) -> Card | None:
    r = one_or(conn, C, C.c.person_id == person_id, C.c.kind == "ecard", C.c.status == "active", lock=lock)
    return _card(r) if r else None


def issue_ecard(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, actor: str) -> Card:
    """The electronic card, after real-name and real-person authentication; one live e-card per person."""
    person = _lock_person(conn, person_id)
    if not person.real_name_verified:
        raise Forbidden("real_name", "real_name_required", "请先完成实名认证", "complete real-name authentication first")
    if not person.real_person_verified:
        raise Forbidden("real_person", "real_person_required", "请先完成实人（人脸）认证", "complete real-person (face) authentication first")
    if active_ecard(conn, person.id) is not None:
        raise Conflict("ecard", "ecard_exists", "已有在用的电子社保卡", "this person already holds an active e-card")
    card = _insert(conn, keyring, now, person=person, kind="ecard", number=_new_number(conn, keyring, "E" + person.region, 11),
                   financial=False, status="active", stage=None, event="ecard_issued", actor=actor)
    audit.append(conn, region=person.region, actor=actor, action="ecard.issue", subject=person.id, detail={"card_id": card.id}, now=now)
    return card


def find_active(conn: Connection, keyring: Keyring, card_no: str, kind: str) -> Card | None:
    """The active card of this kind with this number (found by its keyed hash), if any."""
    r = conn.execute(select(C).where(C.c.card_no_hash == keyring.lookup_hash(card_no), C.c.kind == kind, C.c.status == "active")).first()
    return _card(r) if r else None


def for_person(conn: Connection, person_id: str) -> list[Card]:
    return [_card(r) for r in conn.execute(select(C).where(C.c.person_id == person_id).order_by(C.c.created_at, C.c.kind.desc(), C.c.id)).all()]


def events(conn: Connection, card_id: str) -> list[Any]:
    return conn.execute(select(E).where(E.c.card_id == card_id).order_by(E.c.id)).all()


def view(conn: Connection, keyring: Keyring, card: Card) -> dict[str, Any]:
    """What the holder (or an operator) sees: the number masked, status, production progress, timeline."""
    timeline = events(conn, card.id)
    reached = {"accepted": timeline[0].created_at} if card.kind == "physical" and timeline else {}
    reached.update({e.event.removeprefix("stage_"): e.created_at for e in timeline if e.event.startswith("stage_")})
    return {
        "card_id": card.id, "psn_no": card.person_id, "region": card.region, "kind": card.kind,
        "card_no": mask_card_no(keyring.decrypt(card.card_no_enc, "card_no")), "financial": card.financial,
        "status": card.status, "production_stage": card.production_stage, "photo": card.has_photo,
        "replaced": any(e.event == "replaced" for e in timeline),
        "progress": [{"stage": s, "done": s in reached, "at": iso_utc(reached[s]) if s in reached else None}
                     for s in STAGES] if card.kind == "physical" else [],
        "events": [{"event": e.event, "from": e.from_status, "to": e.to_status, "at": iso_utc(e.created_at)} for e in timeline],
        "created_at": iso_utc(card.created_at), "updated_at": iso_utc(card.updated_at),
    }
