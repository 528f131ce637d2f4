"""Cross-region filings (异地就医备案): long-term (resettled, posted staff) or temporary (referral…)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError
from yibao.services.books import audit
from yibao.services.people import persons as people
from yibao.store.tables import filings as FL


def file(conn: Connection, now: datetime, *, person_id: str, treatment_region: str, filing_type: str, valid_from: date,
         valid_to: date | None, actor: str) -> dict:
    person = people.require(conn, person_id)
    if not (len(treatment_region) == 6 and treatment_region.isdigit()):
        raise InputError("treatment_region", "invalid_region", "就医地区划应为6位数字", "must be a 6-digit region code")
    if treatment_region == person.region:
        raise InputError("treatment_region", "same_region", "就医地与参保地相同，无需备案", "the treatment region is the insured region; no filing needed")
    if filing_type not in ("long_term", "temporary"):
        raise InputError("filing_type", "invalid_choice", "备案类型应为 long_term 或 temporary", "must be long_term or temporary")
    if valid_to is not None and valid_to < valid_from:
        raise InputError("valid_to", "before_start", "结束日期早于开始日期", "ends before it starts")
    new_id = conn.execute(FL.insert().values(region=person.region, person_id=person_id, treatment_region=treatment_region,
                                             filing_type=filing_type, valid_from=valid_from, valid_to=valid_to, created_at=now)).inserted_primary_key[0]
    audit.append(conn, region=person.region, actor=actor, action="filing.create", subject=person_id,
                 detail={"treatment_region": treatment_region, "filing_type": filing_type}, now=now)
    return {"id": new_id, "psn_no": person_id, "treatment_region": treatment_region, "filing_type": filing_type,
            "valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat() if valid_to else None}


def filed_for(conn: Connection, person_id: str, treatment_region: str, day: date) -> bool:
    """Whether the person holds a filing for ``treatment_region`` valid on ``day`` (long-term or temporary)."""
    return conn.execute(select(FL.c.id).where(FL.c.person_id == person_id, FL.c.treatment_region == treatment_region,
                                              FL.c.valid_from <= day, or_(FL.c.valid_to.is_(None), FL.c.valid_to >= day))).first() is not None
