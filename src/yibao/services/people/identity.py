"""Identity: the agency enrols a reference face; the holder proves real name (实名) and real person (实人).

Real name: the name and ID number the holder gives must match the enrolment record. Real person:
a live capture and the terminal's liveness result, verified 1:1 against the enrolled template by
the face verifier. The verifier is called by the entry point between two units of work, never
inside one: `face_template` hands out the template reference (an audited read of PII) and
`record_real_person` records the verifier's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, Forbidden, NotFound
from yibao.domain.identity import parse_id_number
from yibao.domain.names import check_name
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.books import audit
from yibao.store.rows import one_or
from yibao.store.tables import persons as P


def _person(conn: Connection, person_id: str, *, lock: bool = False) -> Any:
    return one_or(conn, P, P.c.id == person_id, lock=lock, missing=NotFound("psn_no", "not_found", "参保人不存在", "insured person not found"))


def status(conn: Connection, person_id: str) -> dict[str, Any]:
    row = _person(conn, person_id)
    return {"psn_no": row.id, "face_enrolled": row.face_template_enc is not None,
            "real_name_verified_at": iso_utc(row.real_name_verified_at),
            "real_person_verified_at": iso_utc(row.real_person_verified_at)}


def enrol_face(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, template_id: str, actor: str) -> dict[str, Any]:
    """Store the verifier's reference template for the person (encrypted); a new one replaces the old."""
    row = _person(conn, person_id, lock=True)
    conn.execute(update(P).where(P.c.id == row.id).values(face_template_enc=keyring.encrypt(template_id, "face_template")))
    audit.append(conn, region=row.region, actor=actor, action="identity.face_enrol", subject=row.id,
                 detail={"replaced": row.face_template_enc is not None}, now=now)
    return status(conn, row.id)


def real_name(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, name: str, id_number: str, actor: str) -> dict[str, Any]:
    """The holder's name and ID number against the enrolment record (a read of clear PII: audited)."""
    number, _ = parse_id_number(id_number)
    given = check_name(name)
    row = _person(conn, person_id, lock=True)
    id_ok = row.id_number_hash == keyring.lookup_hash(number)
    name_ok = keyring.decrypt(bytes(row.name_enc), "name") == given
    if not id_ok:
        raise Forbidden("id_number", "real_name_mismatch", "身份证号与参保登记信息不一致", "the ID number does not match the enrolment record")
    if not name_ok:
        raise Forbidden("name", "real_name_mismatch", "姓名与参保登记信息不一致", "the name does not match the enrolment record")
    conn.execute(update(P).where(P.c.id == row.id).values(real_name_verified_at=now))
    audit.append(conn, region=row.region, actor=actor, action="identity.real_name", subject=row.id, detail={}, now=now)
    return status(conn, row.id)


def face_template(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, actor: str, purpose: str = "real_person") -> str:
    """The reference template for a face check (after real-name); an audited read of PII, with its purpose."""
    if _person(conn, person_id).real_name_verified_at is None:
        raise Forbidden("real_name", "real_name_required", "请先完成实名认证", "complete real-name authentication first")
    return enrolled_template(conn, keyring, now, person_id=person_id, actor=actor, purpose=purpose)


def enrolled_template(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, actor: str, purpose: str) -> str:
    """The reference template, for a check that itself proves the name (real-name log-in); an audited read of PII."""
    row = _person(conn, person_id)
    if row.face_template_enc is None:
        raise Conflict("face_template", "face_not_enrolled", "尚未采集人脸，请到经办机构采集", "no face is enrolled; enrol it at the agency first")
    audit.append(conn, region=row.region, actor=actor, action="pii.face_template", subject=row.id, detail={"purpose": purpose}, now=now)
    return keyring.decrypt(bytes(row.face_template_enc), "face_template")


def record_real_person(conn: Connection, keyring: Keyring, now: datetime, *, person_id: str, template_id: str, match: bool,
                       liveness: str, similarity: float, actor: str) -> dict[str, Any]:
    """Record the verifier's answer: verified only when the face matched and liveness passed."""
    row = _person(conn, person_id, lock=True)
    if row.face_template_enc is None or keyring.decrypt(bytes(row.face_template_enc), "face_template") != template_id:
        raise Conflict("face_template", "face_template_changed", "人脸模板已更新，请重新认证", "the enrolled face changed meanwhile; try again")
    if liveness != "pass":
        raise Forbidden("liveness", "liveness_failed", "活体检测未通过", "the liveness check failed")
    if not match:
        raise Forbidden("capture", "face_mismatch", "人脸比对不一致", "the face does not match the enrolled face")
    conn.execute(update(P).where(P.c.id == row.id).values(real_person_verified_at=now))
    audit.append(conn, region=row.region, actor=actor, action="identity.real_person", subject=row.id,
                 detail={"similarity": round(similarity, 4)}, now=now)
    return status(conn, row.id)


# ---- through the face verifier (a call between units) ---------------------------------------------


async def enrol_capture(ctx: Context, *, person_id: str, capture: str, actor: str) -> Callable[[Connection], dict[str, Any]]:
    """The agency enrols a person's reference face: the verifier makes the template from the capture (a call);
    returned is the unit that stores it, for the caller to run (with its idempotency record)."""
    await ctx.run(lambda c: status(c, person_id), write=False)  # no template for nobody
    template_id = await ctx.verifier().enrol(capture)
    return lambda c: enrol_face(c, ctx.keyring, ctx.now(), person_id=person_id, template_id=template_id, actor=actor)


async def check_real_person(ctx: Context, *, person_id: str, capture: str, liveness: dict[str, Any] | None,
                            actor: str) -> Callable[[Connection], dict[str, Any]]:
    """实人认证: a live face, 1:1 with the enrolled one. The template is read (an audited unit), the verifier
    compares (a call); returned is the unit recording the answer, for the caller to run (with its idempotency record)."""
    template = await ctx.run(lambda c: face_template(c, ctx.keyring, ctx.now(), person_id=person_id, actor=actor))
    checked = await ctx.verifier().verify(template, capture, liveness)

    def record(c: Connection) -> dict[str, Any]:
        done = record_real_person(c, ctx.keyring, ctx.now(), person_id=person_id, template_id=template, match=checked.match,
                                  liveness=checked.liveness, similarity=checked.similarity, actor=actor)
        return {**done, "similarity": checked.similarity, "liveness": checked.liveness}
    return record
