"""Family links: a guardian and a child (Shenzhen rule, seed 000), and family mutual aid (家庭共济).

Link rows (family_links): holder_id is the account owner.
- relation "child_card": the guardian linked the child's card to their e-card (condition 2, second half);
- relation "guardian": guardian and child are linked as a family account (condition 3);
- relation "spouse" | "parent" | "child": the holder lets that relative's bills use the holder's account
  (the relation says what the member is to the holder).
A removed link keeps its row with status "removed"; linking again reactivates it.

Linking a child's card checks conditions 1, 2 and 4 through the engine's rule, as if the link were
made; the family-account link checks them again; conditions 3 and 5 are checked at payment.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_name
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.domain.family import GUARDIAN_BALANCE, GUARDIAN_CONDITIONS, GuardianDecision, GuardianFacts, check_guardian_account
from yibao.domain.identity import parse_id_number
from yibao.domain.ledger import person_account
from yibao.domain.money import format_yuan
from yibao.domain.names import check_name
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit, ledger
from yibao.services.people import persons as people
from yibao.store.tables import cards as C
from yibao.store.tables import ecard_bindings as B
from yibao.store.tables import family_links as F
from yibao.store.tables import payment_institutions as PI
from yibao.store.tables import persons as P

MUTUAL_AID = ("spouse", "parent", "child")


def _link_active(conn: Connection, holder_id: str, member_id: str, relation: str) -> bool:
    return conn.execute(select(F.c.id).where(F.c.holder_id == holder_id, F.c.member_id == member_id, F.c.relation == relation,
                                             F.c.status == "active")).first() is not None


def has_family_account(conn: Connection, *, guardian_id: str, child_id: str) -> bool:
    """Whether the guardian linked their account as the child's family account (家庭账户关联): theirs pays the child's care."""
    return _link_active(conn, guardian_id, child_id, "guardian")


def is_own_family(conn: Connection, *, holder_id: str, person_id: str) -> bool:
    """Whether ``person_id`` is the holder themself or family the holder has an active link with, in either direction
    (their child or guardian, a relative who shares an account with them or with whom they share theirs): a family link
    is mutual, so both sides see each other's name in full (`links`'s ``own_in_full``)."""
    return person_id == holder_id or relation_between(conn, holder_id, person_id) is not None


def display_name(conn: Connection, keyring: Keyring, *, reader_id: str | None, person_id: str) -> str:
    """A person's name as a reader sees it: in full for the reader's own family (themself, the members they linked),
    masked otherwise — and always masked to an institution (``reader_id`` None)."""
    name = keyring.decrypt(people.require(conn, person_id).name_enc, "name")
    if reader_id is not None and is_own_family(conn, holder_id=reader_id, person_id=person_id):
        return name
    return mask_name(name)


def guardian_facts(conn: Connection, *, guardian_id: str, child_id: str, region: str) -> GuardianFacts:
    """What the platform knows about the pair now, for the engine's five-condition rule."""
    child = conn.execute(select(P).where(P.c.id == child_id)).one()
    financial_card = conn.execute(select(C.c.id).where(C.c.person_id == child_id, C.c.kind == "physical", C.c.financial.is_(True),
                                                       C.c.status == "active")).first() is not None
    bound_ecard = conn.execute(select(C.c.id).where(
        C.c.person_id == guardian_id, C.c.kind == "ecard", C.c.status == "active",
        exists().where(and_(B.c.card_id == C.c.id, B.c.status == "bound", B.c.payment_institution_id == PI.c.id,
                            PI.c.status == "admitted")))).first() is not None
    return GuardianFacts(
        child_insured_in_region=child.region == region and child.status == "active" and child.insurance_type == "child",
        child_has_financial_card=financial_card,
        guardian_ecard_bound=bound_ecard,
        child_card_linked=_link_active(conn, guardian_id, child_id, "child_card"),
        family_account_linked=_link_active(conn, guardian_id, child_id, "guardian"),
        guardian_matches_enrolment=child.enrolment_guardian_id == guardian_id,
        guardian_balance=ledger.available(conn, person_account(guardian_id)),
    )


def mutual_aid_relation(conn: Connection, *, holder_id: str, member_id: str, active_only: bool = True) -> str | None:
    """The relation under which ``holder_id`` lets ``member_id`` use their account, if any (``active_only=False``: or
    did, the grant since revoked — what a refund of a payment made under it prices with)."""
    q = select(F.c.relation).where(F.c.holder_id == holder_id, F.c.member_id == member_id, F.c.relation.in_(("spouse", "parent", "child")))
    row = conn.execute(q.where(F.c.status == "active") if active_only else q.order_by((F.c.status == "active").desc(), F.c.id.desc())).first()
    return row.relation if row else None


def can_view(conn: Connection, viewer_id: str, target_id: str) -> bool:
    """A holder sees their own data, and a guardian a linked child's. A mutual-aid grant lets a
    relative pay from the holder's account; it shows neither of them the other's records."""
    if viewer_id == target_id:
        return True
    return conn.execute(select(F.c.id).where(F.c.status == "active", F.c.holder_id == viewer_id, F.c.member_id == target_id,
                                             F.c.relation.in_(("guardian", "child_card")))).first() is not None


# ---- making and removing links --------------------------------------------------------------


def _lock_holder(conn: Connection, person_id: str) -> people.Person:
    """Link changes of one holder are serialised on the holder's row."""
    if conn.execute(select(P.c.id).where(P.c.id == person_id).with_for_update()).first() is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return people.require(conn, person_id)


def _link(conn: Connection, now: datetime, holder: people.Person, member_id: str, relation: str) -> None:
    row = conn.execute(select(F.c.id, F.c.status).where(F.c.holder_id == holder.id, F.c.member_id == member_id,
                                                        F.c.relation == relation)).first()
    if row is None:
        conn.execute(F.insert().values(region=holder.region, holder_id=holder.id, member_id=member_id, relation=relation,
                                       status="active", updated_at=now, created_at=now))
    elif row.status == "removed":
        conn.execute(update(F).where(F.c.id == row.id).values(status="active", updated_at=now))
    else:
        raise Conflict("relation", "already_linked", "已建立该关联", "this link already exists")


def _min_balance(region: str, now: datetime) -> int:
    return policy_for(region, now.year).guardian_min_balance


def _require(facts: GuardianFacts, min_balance: int, numbers: tuple[int, ...]) -> None:
    """Refuse, naming every failed condition among ``numbers`` (the engine's rule decides)."""
    failed = tuple(c for c in check_guardian_account(facts, min_balance).failed if c.number in numbers)
    if failed:
        decision = GuardianDecision(False, failed, min_balance)
        raise Forbidden("conditions", "guardian_conditions_not_met", decision.reason_zh(), decision.reason_en())


def link_child_card(conn: Connection, keyring: Keyring, now: datetime, *, guardian_id: str, card_no: str, child_name: str,
                    actor: str) -> dict[str, Any]:
    """The guardian links a child's social-security card (number and the child's name) to their e-card."""
    child_name = check_name(child_name, "child_name")
    guardian = _lock_holder(conn, guardian_id)
    card = conn.execute(select(C).where(C.c.card_no_hash == keyring.lookup_hash(card_no), C.c.kind == "physical")).first()
    child = people.get(conn, card.person_id) if card is not None else None
    if child is None or keyring.decrypt(child.name_enc, "name") != child_name:
        raise NotFound("card_no", "no_matching_card", "未找到卡号与姓名一致的社保卡", "no social-security card with this number and name")
    if child.id == guardian.id:
        raise InputError("card_no", "own_card", "不能关联本人的社保卡", "this is your own card")
    facts = guardian_facts(conn, guardian_id=guardian.id, child_id=child.id, region=guardian.region)
    usable = card.status == "active" and card.financial
    facts = replace(facts, child_card_linked=True, child_has_financial_card=facts.child_has_financial_card and usable)
    _require(facts, _min_balance(guardian.region, now), (1, 2, 4))
    _link(conn, now, guardian, child.id, "child_card")
    audit.append(conn, region=guardian.region, actor=actor, action="family.link_child_card", subject=guardian.id,
                 detail={"child": child.id}, now=now)
    return checklist(conn, now, guardian_id=guardian.id, child_id=child.id)


def link_family_account(conn: Connection, now: datetime, *, guardian_id: str, child_id: str, actor: str) -> dict[str, Any]:
    """Guardian and child become a family account (condition 3), once the child's card is linked."""
    guardian = _lock_holder(conn, guardian_id)
    if not can_view(conn, guardian.id, child_id) or guardian.id == child_id:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    _require(guardian_facts(conn, guardian_id=guardian.id, child_id=child_id, region=guardian.region),
             _min_balance(guardian.region, now), (1, 2, 4))
    _link(conn, now, guardian, child_id, "guardian")
    audit.append(conn, region=guardian.region, actor=actor, action="family.link_account", subject=guardian.id,
                 detail={"child": child_id}, now=now)
    return checklist(conn, now, guardian_id=guardian.id, child_id=child_id)


def checklist(conn: Connection, now: datetime, *, guardian_id: str, child_id: str) -> dict[str, Any]:
    """All five conditions, met or not; condition 5 with its threshold and the guardian's balance."""
    if guardian_id == child_id:
        raise InputError("psn_no", "not_a_child", "请选择您监护的少儿", "choose a child in your care, not yourself")
    guardian, child = people.require(conn, guardian_id), people.require(conn, child_id)
    facts = guardian_facts(conn, guardian_id=guardian.id, child_id=child.id, region=guardian.region)
    min_balance = _min_balance(guardian.region, now)
    decision = check_guardian_account(facts, min_balance)
    items = []
    for c in GUARDIAN_CONDITIONS:
        item: dict[str, Any] = {"number": c.number, "code": c.code, "met": c not in decision.failed, "zh": c.zh, "en": c.en}
        if c is GUARDIAN_BALANCE:
            item.update(threshold=format_yuan(min_balance), balance=format_yuan(facts.guardian_balance))
        items.append(item)
    return {"guardian_psn_no": guardian.id, "child_psn_no": child.id, "allowed": decision.allowed, "conditions": items}


def grant_mutual_aid(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, relation: str, id_number: str, name: str,
                     actor: str) -> dict[str, Any]:
    """The account holder lets a relative (ID number and name must match an enrolled person) use their account."""
    if relation not in MUTUAL_AID:
        raise InputError("relation", "invalid_choice", "关系应为 spouse | parent | child", "must be spouse, parent or child")
    number, _ = parse_id_number(id_number)
    name = check_name(name)
    holder = _lock_holder(conn, holder_id)
    relative = people.find_by_id_number(conn, keyring, number)
    if relative is None or keyring.decrypt(relative.name_enc, "name") != name:
        raise NotFound("id_number", "no_matching_person", "未找到身份证号与姓名均一致的参保人",
                       "no insured person has this ID number and this name")
    if relative.id == holder.id:
        raise InputError("id_number", "self", "不能授权给本人", "you cannot grant mutual aid to yourself")
    if relative.region != holder.region:
        raise Conflict("id_number", "other_region", "家庭共济仅限同一统筹区的亲属", "family mutual aid is limited to relatives insured in your region")
    if conn.execute(select(ledger.A.c.id).where(ledger.A.c.id == person_account(holder.id))).first() is None:
        raise Conflict("psn_no", "no_personal_account", "您没有医保个人账户，无法共济", "you have no personal account to share")
    current = mutual_aid_relation(conn, holder_id=holder.id, member_id=relative.id)
    if current is not None:
        raise Conflict("relation", "already_granted", "已授权该亲属共济", f"mutual aid is already granted to this relative (as {current})")
    _link(conn, now, holder, relative.id, relation)
    audit.append(conn, region=holder.region, actor=actor, action="family.mutual_aid_grant", subject=holder.id,
                 detail={"member": relative.id, "relation": relation}, now=now)
    return {"holder_psn_no": holder.id, "member_psn_no": relative.id, "relation": relation,
            "name": mask_name(keyring.decrypt(relative.name_enc, "name")), "status": "active"}


def revoke_mutual_aid(conn: Connection, now: datetime, *, holder_id: str, member_id: str, actor: str) -> dict[str, Any]:
    holder = _lock_holder(conn, holder_id)
    relation = mutual_aid_relation(conn, holder_id=holder.id, member_id=member_id)
    if relation is None:
        raise NotFound("psn_no", "not_granted", "未授权该亲属共济", "no mutual aid is granted to this person")
    conn.execute(update(F).where(F.c.holder_id == holder.id, F.c.member_id == member_id, F.c.relation == relation)
                 .values(status="removed", updated_at=now))
    audit.append(conn, region=holder.region, actor=actor, action="family.mutual_aid_revoke", subject=holder.id,
                 detail={"member": member_id, "relation": relation}, now=now)
    return {"holder_psn_no": holder.id, "member_psn_no": member_id, "relation": relation, "status": "removed"}


def links(conn: Connection, keyring: Keyring, person_id: str, *, own_in_full: bool = False) -> list[dict[str, Any]]:
    """The person's active links in either direction, the other person's name masked — except, with ``own_in_full``
    (the person themself reading: the app, the patient API), their own family: a link is mutual, so the person sees
    in full both those they linked (their child, a relative they share their account with) and those who linked them
    (a guardian, a relative sharing an account with them). Everyone stays masked to an institution."""
    rows = conn.execute(select(F).where(F.c.status == "active", (F.c.holder_id == person_id) | (F.c.member_id == person_id))
                        .order_by(F.c.id)).all()
    out = []
    for r in rows:
        other = people.require(conn, r.member_id if r.holder_id == person_id else r.holder_id)
        name = keyring.decrypt(other.name_enc, "name")
        full = own_in_full
        out.append({"holder_psn_no": r.holder_id, "member_psn_no": r.member_id, "relation": r.relation,
                    "other_psn_no": other.id, "other_name": name if full else mask_name(name), "since": iso_utc(r.updated_at)})
    return out


def relation_between(conn: Connection, payer_id: str, person_id: str) -> str | None:
    """The active family link between two people in either direction (guardian and child, or a
    mutual-aid relative), if any: who may repay a credit bill for whom."""
    row = conn.execute(select(F.c.relation).where(F.c.status == "active", (
        (F.c.holder_id == payer_id) & (F.c.member_id == person_id)) | ((F.c.holder_id == person_id) & (F.c.member_id == payer_id)))
        .order_by(F.c.id)).first()
    return row.relation if row else None


def linked_people(conn: Connection, person_id: str) -> list[str]:
    """Everyone with an active family link to the person, in either direction."""
    rows = conn.execute(select(F.c.holder_id, F.c.member_id).where(F.c.status == "active",
                                                                    (F.c.holder_id == person_id) | (F.c.member_id == person_id))).all()
    return sorted({r.member_id if r.holder_id == person_id else r.holder_id for r in rows} - {person_id})


def account_payers(conn: Connection, keyring: Keyring, patient_id: str) -> list[dict[str, str]]:
    """Whose personal account may pay the patient's bills at a counter, besides their own: each linked guardian
    (payer "guardian", a child) and each relative who shares their account with the patient (payer "family", 家庭共济),
    in the order the links were made, names masked — the choices the settlement's AccountRequest takes (services/care/
    settlement.py decides, at pricing, whether that account may pay this bill). No balance: that is read only once the
    account's owner is present."""
    rows = conn.execute(select(F.c.holder_id, F.c.relation).where(F.c.status == "active", F.c.member_id == patient_id,
                                                                  F.c.relation.in_(("guardian", "child_card", *MUTUAL_AID)))
                        .order_by(F.c.id)).all()
    out: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        payer = "guardian" if r.relation in ("guardian", "child_card") else "family"
        if (payer, r.holder_id) in out:
            continue
        holder = people.require(conn, r.holder_id)
        out[(payer, r.holder_id)] = {"payer": payer, "psn_no": r.holder_id, "relation": "guardian" if payer == "guardian" else r.relation,
                                     "name": mask_name(keyring.decrypt(holder.name_enc, "name"))}
    return list(out.values())
