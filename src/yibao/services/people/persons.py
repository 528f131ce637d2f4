"""Insured people: enrolment, lookups by credential (personal-account credits: account_credits.py).

Identity numbers, names and phones are stored encrypted with a keyed hash for lookups; every
read of clear PII by a user-facing path is audited by the caller (see api/).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError, one_of
from yibao.domain.identity import age_on, parse_id_number
from yibao.domain.ledger import person_account
from yibao.domain.names import check_name
from yibao.domain.policy import INSURANCE_TYPES
from yibao.services.agency.institutions import Institution
from yibao.services.agency.policies import policy_for
from yibao.services.agency.regions import ensure_region
from yibao.services.books import audit, ledger
from yibao.services.people import lookups
from yibao.store.sql import Sql, as_date
from yibao.store.tables import persons as P

EMPLOYMENT = ("employed", "retired", "none")


@dataclass(frozen=True)
class Person:
    id: str
    region: str
    insurance_type: str
    tier: int | None
    employment_status: str
    hardship: str | None
    birth_date: date
    enrolment_guardian_id: str | None
    real_name_verified: bool
    real_person_verified: bool
    status: str
    id_number_enc: bytes
    name_enc: bytes
    phone_enc: bytes | None

    @property
    def retired(self) -> bool:
        return self.employment_status == "retired"

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)


def _row(r) -> Person:  # noqa: ANN001
    return Person(r.id, r.region, r.insurance_type, r.tier, r.employment_status, r.hardship, r.birth_date, r.enrolment_guardian_id,
                  r.real_name_verified_at is not None, r.real_person_verified_at is not None, r.status,
                  bytes(r.id_number_enc), bytes(r.name_enc), bytes(r.phone_enc) if r.phone_enc is not None else None)


def enrol(conn: Connection, keyring: Keyring, now: datetime, *, region: str, id_number: str, name: str, insurance_type: str,
          employment_status: str = "employed", tier: int | None = None, phone: str | None = None, hardship: str | None = None,
          guardian_id: str | None = None, actor: str = "system") -> Person:
    """Record an enrolment (参保登记). A child's enrolment records the guardian (seed 000, condition 4)."""
    number, born = parse_id_number(id_number)
    if insurance_type not in INSURANCE_TYPES:
        raise InputError("insurance_type", "invalid_choice", "险种应为 employee | resident | child", "must be employee, resident or child")
    if employment_status not in EMPLOYMENT:
        raise InputError("employment_status", "invalid_choice", "就业状态应为 employed | retired | none", "must be employed, retired or none")
    name = check_name(name)  # 1–50 characters, none of them invisible (a bidi override, a zero-width joiner …)
    if phone is not None and not (phone.isdigit() and len(phone) == 11):
        raise InputError("phone", "invalid_phone", "手机号应为11位数字", "must be an 11-digit mobile number")
    policy = policy_for(region, now.year)
    scheme = policy.schemes.get(insurance_type)
    if scheme is None:
        raise InputError("insurance_type", "scheme_not_in_policy", f"统筹区 {region} 没有该险种", f"region {region} has no {insurance_type} scheme")
    if scheme.tiers is not None and tier not in scheme.tiers:
        zh, en = one_of(scheme.tiers)
        raise InputError("tier", "unknown_tier", f"档次应为 {zh}", f"tier must be {en}")
    if insurance_type == "child" and guardian_id is None:
        raise InputError("guardian_id", "guardian_required", "少儿参保须登记监护人", "a child's enrolment must record the guardian")
    if guardian_id is not None and get(conn, guardian_id) is None:
        raise InputError("guardian_id", "unknown_guardian", "登记的监护人不存在", "the recorded guardian is not enrolled")
    id_hash = keyring.lookup_hash(number)
    if conn.execute(select(P.c.id).where(P.c.id_number_hash == id_hash)).first():
        raise Conflict("id_number", "already_enrolled", "该身份证号已参保", "a person with this ID number is already enrolled")
    person_id = f"{region}{secrets.randbelow(10**12):012d}"
    conn.execute(P.insert().values(
        id=person_id, region=region, id_number_enc=keyring.encrypt(number, "id_number"), id_number_hash=id_hash,
        name_enc=keyring.encrypt(name.strip(), "name"), phone_enc=keyring.encrypt(phone, "phone") if phone else None,
        phone_hash=keyring.lookup_hash(phone) if phone else None, birth_date=born, insurance_type=insurance_type, tier=tier,
        employment_status=employment_status, hardship=hardship, enrolment_guardian_id=guardian_id, status="active", created_at=now))
    ensure_region(conn, region, now)
    if scheme.account_for(tier):
        ledger.ensure_account(conn, person_account(person_id), region, "personal_account", now, owner_id=person_id, no_overdraft=True)
    audit.append(conn, region=region, actor=actor, action="person.enrol", subject=person_id,
                 detail={"insurance_type": insurance_type, "tier": tier}, now=now)
    return get(conn, person_id)  # type: ignore[return-value]


# Read several times on every payment and settlement: prepared SQL (store/sql.py), not Core (~100 µs each).
_GET = Sql("""SELECT id, region, insurance_type, tier, employment_status, hardship, birth_date, enrolment_guardian_id, real_name_verified_at,
              real_person_verified_at, status, id_number_enc, name_enc, phone_enc FROM persons WHERE id = :id""")


def get(conn: Connection, person_id: str) -> Person | None:
    r = _GET(conn, {"id": person_id}).first()
    return _row(r._replace(birth_date=as_date(r.birth_date))) if r else None


def require(conn: Connection, person_id: str) -> Person:
    p = get(conn, person_id)
    if p is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return p


def find_by_id_number(conn: Connection, keyring: Keyring, id_number: str) -> Person | None:
    r = conn.execute(select(P).where(P.c.id_number_hash == keyring.lookup_hash(id_number))).first()
    return _row(r) if r else None


def find_by_phone(conn: Connection, keyring: Keyring, phone: str) -> Person | None:
    r = conn.execute(select(P).where(P.c.phone_hash == keyring.lookup_hash(phone))).first()
    return _row(r) if r else None



def find_by_card_no(conn: Connection, keyring: Keyring, card_no: str, kind: str | None = None) -> Person | None:
    from yibao.store.tables import cards as C

    q = select(C.c.person_id).where(C.c.card_no_hash == keyring.lookup_hash(card_no), C.c.status == "active")
    if kind is not None:
        q = q.where(C.c.kind == kind)
    row = conn.execute(q).first()
    return get(conn, row.person_id) if row else None


def masked_view(person: Person, keyring: Keyring) -> dict:
    """What an institution or a holder may see of a person: identifiers masked.

    No birth date, and no age either: the ten hidden characters of a masked ID number are two of the area
    code and the eight of the birth date, and the last character shown is a checksum over all of them — so a
    birth date beside the mask gave the number back, and even an age cut it to a few thousand candidates."""
    from yibao.crypto.pii import mask_id_number, mask_name, mask_phone

    return {
        "psn_no": person.id, "insuplc_admdvs": person.region,
        "psn_name": mask_name(keyring.decrypt(person.name_enc, "name")),
        "certno": mask_id_number(keyring.decrypt(person.id_number_enc, "id_number")),
        "phone": mask_phone(keyring.decrypt(person.phone_enc, "phone")) if person.phone_enc else None,
        "insutype": person.insurance_type, "tier": person.tier, "employment_status": person.employment_status,
        "status": person.status,
    }


def counter_view(person: Person, keyring: Keyring, card_status: str | None = None) -> dict:
    """What a counter learns from a look-up, before the person has presented anything: who (masked name, the
    number to open a visit with), where insured and how, and whether the person and card are in use. Never the
    account balance, the birth date, the ID number or the phone: the balance is for after presence (the
    pre-settlement and settlement with a credential), the rest is not the counter's to know."""
    from yibao.crypto.pii import mask_name

    return {"psn_no": person.id, "psn_name": mask_name(keyring.decrypt(person.name_enc, "name")), "insuplc_admdvs": person.region,
            "insutype": person.insurance_type, "status": person.status, "card_status": card_status}


def lookup_for_institution(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, actor: str,
                           credential_type: str, credential_no: str) -> dict | YibaoError:
    """Person lookup by credential (1101): the e-card, the card or the ID number as an identity credential.

    Throttled per institution and watched for enumeration (services/people/lookups.py). Answers `counter_view`,
    audited as a PII read; a number that names nobody is *returned* as the refusal (its row must commit: it
    counts), and the caller raises it. Raises `too_many_lookups` (429) while the institution is throttled."""
    lookups.throttle(conn, now, institution.id)
    if credential_type == "id_number":
        number, _ = parse_id_number(credential_no, "credential_no")
        person = find_by_id_number(conn, keyring, number)
        card_status = None
    else:
        number = credential_no.strip().upper()
        person = find_by_card_no(conn, keyring, number, kind="ecard" if credential_type == "ecard" else "physical")
        card_status = "active" if person is not None else None  # only an active card finds anyone
    lookups.record(conn, keyring, now, institution=institution, credential_type=credential_type, number=number,
                   outcome="found" if person is not None else "not_found", actor=actor)
    if person is None:
        return NotFound("credential_no", "not_found", "未找到该凭证对应的参保人，或卡片不可用", "no insured person holds an active credential like this")
    audit.append(conn, region=institution.region, actor=actor, action="pii.lookup", subject=person.id,
                 detail={"credential_type": credential_type}, now=now)
    return counter_view(person, keyring, card_status)


def region_of(conn: Connection, person_id: str) -> str:
    row = conn.execute(select(P.c.region).where(P.c.id == person_id)).first()
    if row is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return row.region
