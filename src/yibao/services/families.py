"""Family links: a guardian and a child (Shenzhen rule, seed 000), and family mutual aid (家庭共济).

Link rows (family_links): holder_id is the account owner.
- relation "child_card": the guardian linked the child's card to their e-card (condition 2, second half);
- relation "guardian": guardian and child are linked as a family account (condition 3);
- relation "spouse" | "parent" | "child": the holder lets that relative's bills use the holder's account.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, select
from sqlalchemy.engine import Connection

from yibao.domain.family import GuardianFacts
from yibao.domain.ledger import person_account
from yibao.services import ledger
from yibao.store.tables import cards as C, ecard_bindings as B, family_links as F, persons as P


def _link_active(conn: Connection, holder_id: str, member_id: str, relation: str) -> bool:
    return conn.execute(select(F.c.id).where(F.c.holder_id == holder_id, F.c.member_id == member_id, F.c.relation == relation,
                                             F.c.status == "active")).first() is not None


def guardian_facts(conn: Connection, *, guardian_id: str, child_id: str, region: str) -> GuardianFacts:
    """What the platform knows about the pair now, for the engine's five-condition rule."""
    child = conn.execute(select(P).where(P.c.id == child_id)).one()
    financial_card = conn.execute(select(C.c.id).where(C.c.person_id == child_id, C.c.kind == "physical", C.c.financial.is_(True),
                                                       C.c.status == "active")).first() is not None
    bound_ecard = conn.execute(select(C.c.id).where(
        C.c.person_id == guardian_id, C.c.kind == "ecard", C.c.status == "active",
        exists().where(and_(B.c.card_id == C.c.id, B.c.status == "bound")))).first() is not None
    return GuardianFacts(
        child_insured_in_region=child.region == region and child.status == "active" and child.insurance_type == "child",
        child_has_financial_card=financial_card,
        guardian_ecard_bound=bound_ecard,
        child_card_linked=_link_active(conn, guardian_id, child_id, "child_card"),
        family_account_linked=_link_active(conn, guardian_id, child_id, "guardian"),
        guardian_matches_enrolment=child.enrolment_guardian_id == guardian_id,
        guardian_balance=ledger.available(conn, person_account(guardian_id)),
    )


def mutual_aid_relation(conn: Connection, *, holder_id: str, member_id: str) -> str | None:
    """The relation under which ``holder_id`` lets ``member_id`` use their account, if any."""
    row = conn.execute(select(F.c.relation).where(F.c.holder_id == holder_id, F.c.member_id == member_id,
                                                  F.c.relation.in_(("spouse", "parent", "child")), F.c.status == "active")).first()
    return row.relation if row else None


def can_view(conn: Connection, viewer_id: str, target_id: str) -> bool:
    """A holder sees their own data and that of people linked to them in either direction."""
    if viewer_id == target_id:
        return True
    return conn.execute(select(F.c.id).where(F.c.status == "active", ((F.c.holder_id == viewer_id) & (F.c.member_id == target_id)) |
                                             ((F.c.holder_id == target_id) & (F.c.member_id == viewer_id)))).first() is not None
