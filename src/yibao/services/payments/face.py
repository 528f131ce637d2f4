"""Face payment (刷脸支付, seed 004): a terminal's live capture, compared 1:1 with the face enrolled
at real-person authentication, authorises one payment at that institution.

The check is in three steps, because the comparison is a call to the face verifier and no unit of
work may wait on one (`check` runs the first two and hands back the third):
1. `prepare` (a unit): the payer may pay by face here — active, real-person verified, not locked
   out by failed attempts (anywhere); a guardian paying for a child must be linked to that child; the patient's
   region must be the institution's or filed for it. Returns the reference template (an audited read).
2. the verifier is asked (`FaceVerifier.verify`), outside any unit;
3. `record` (a unit): the attempt is recorded whatever its outcome; a verified face yields a
   single-use `FaceAuthorization` that lives `AUTHORIZATION_TTL`. A failed check is *returned*, not
   raised, so its row commits first (raising would roll the count back: unlimited tries).

After `ATTEMPT_LIMIT` failed checks of one person within `WINDOW` — at any institutions, counted together:
the limit is the person's, not each door's (three per hospital made fifteen across five) — face payment
is refused everywhere until the window has passed: the patient pays with the dynamic code instead
("three failed attempts, then the code path"). A success resets the count. Whether a capture is live is
the verifier's finding from the capture, never the terminal's say (yibao.face.client).

`consume` uses an authorization once (a conditional UPDATE live → used); `pay` is the payment it authorises:
the one-code path with the authorization in place of the code.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_name
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, TooManyAttempts, YibaoError
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.access import attempts
from yibao.services.agency import pilots
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.services.care import presence, visits
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.services.people import families, identity
from yibao.services.people import persons as people
from yibao.services.people.filings import filed_for
from yibao.store.tables import face_attempts as FA
from yibao.store.tables import face_authorizations as AU
from yibao.store.upsert import insert_ignore

ATTEMPT_LIMIT = 3  # the rule: three failed attempts, then the code path
WINDOW = timedelta(minutes=10)  # guessed: how long failures count; also the longest lock-out
PER_PERSON = AttemptLimit(ATTEMPT_LIMIT, WINDOW)  # per person, across institutions
PER_PERSON_HERE = PER_PERSON  # the former name (it counted per institution): kept for callers
AUTHORIZATION_TTL = timedelta(seconds=120)  # guessed: a verified face is for the payment at hand, not for later


@dataclass(frozen=True)
class Prepared:
    """What step 2 needs: the template to compare with, and who is paying for whom."""

    template_id: str
    person_id: str  # the patient
    holder_id: str  # whose face: the patient, or a guardian paying for a linked child
    relation: str  # self | guardian


@dataclass(frozen=True)
class FaceAuthorization:
    """A verified face, good for one payment: what the payment flow proceeds with (like a consumed code)."""

    id: str
    person_id: str
    holder_id: str
    relation: str
    insured_region: str
    institution_id: str
    terminal_id: str | None
    expires_at: datetime


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _recent_failures(conn: Connection, now: datetime, person_id: str, institution_id: str | None = None) -> list[datetime]:
    """Failed checks of this person within the window and after their latest success, at every institution
    (``institution_id`` is not a filter: a person's face is one subject whichever terminal it is shown to)."""
    return attempts.failures(conn, FA, PER_PERSON, now, FA.c.person_id == person_id,
                             failed=FA.c.outcome != "verified", succeeded=FA.c.outcome == "verified")


def _lockout(conn: Connection, now: datetime, person_id: str, institution_id: str | None = None) -> TooManyAttempts | None:
    retry_after = PER_PERSON.retry_after(_recent_failures(conn, now, person_id), now)
    if retry_after is None:
        return None
    return TooManyAttempts("capture", "face_attempts_exhausted", f"刷脸失败已达{ATTEMPT_LIMIT}次，请改用医保码支付",
                           f"{ATTEMPT_LIMIT} failed face checks: pay with the payment code instead", retry_after)


def prepare(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, person_id: str, payer_id: str | None,
            actor: str) -> Prepared:
    """Step 1: may ``payer_id`` (default: the patient) pay by face for ``person_id`` here? Returns the template."""
    holder_id = payer_id or person_id
    patient = people.get(conn, person_id)
    if patient is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    if patient.status != "active":
        raise Forbidden("psn_no", "person_not_active", "该参保人已停保，不能使用医保支付", "this insured person is not active")
    relation = "self"
    if holder_id != person_id:
        payer = people.get(conn, holder_id)
        # The same answer whether the payer does not exist or is not linked: no probing of who is whose guardian.
        if payer is None or payer.status != "active" or not families.can_view(conn, holder_id, person_id):
            raise Forbidden("payer_psn_no", "not_guardian", "付款人不是该参保人已关联的监护人", "the payer is not a linked guardian of this patient")
        relation = "guardian"
    if patient.region != institution.region and not filed_for(conn, person_id, institution.region, now.date()):
        raise Forbidden("psn_no", "face_other_region", "该参保人属其他统筹区且未在本地备案，不能在本机构刷脸支付",
                        "this person is insured in another region and not filed for this one")
    locked = _lockout(conn, now, holder_id, institution.id)
    if locked is not None:
        raise locked
    if identity.status(conn, holder_id)["real_person_verified_at"] is None:
        raise Forbidden("payer_psn_no" if relation == "guardian" else "psn_no", "real_person_required",
                        "尚未完成实人认证，不能刷脸支付，请使用医保码", "real-person (face) authentication is not done: pay with the payment code")
    template = identity.face_template(conn, keyring, now, person_id=holder_id, actor=actor, purpose="face_payment")
    return Prepared(template, person_id, holder_id, relation)


def record(conn: Connection, now: datetime, *, institution: Institution, prepared: Prepared, terminal_id: str | None, match: bool,
           liveness: str, similarity: float, actor: str) -> FaceAuthorization | YibaoError:
    """Step 3: record the check; a verified face becomes a single-use authorization. A failure is returned."""
    if liveness != "pass":
        outcome = "liveness_failed"
    elif not match:
        outcome = "face_mismatch"
    else:
        outcome = "verified"
    # Re-check the lock-out, one check of this person at a time: a concurrent attempt (at any terminal) may have
    # used the last try since `prepare`.
    attempts.serialise(conn, "face_pay:person", prepared.holder_id)
    locked = _lockout(conn, now, prepared.holder_id, institution.id)
    conn.execute(FA.insert().values(region=institution.region, person_id=prepared.holder_id, institution_id=institution.id,
                                    terminal_id=terminal_id or "", outcome=outcome, created_at=now))
    audit.append(conn, region=institution.region, actor=actor, action=f"face_pay.{outcome}", subject=prepared.holder_id,
                 detail={"patient": prepared.person_id, "institution": institution.id, "terminal": terminal_id,
                         "similarity": round(similarity, 4)}, now=now)
    if locked is not None:
        return locked
    if outcome != "verified":
        left = PER_PERSON.left(_recent_failures(conn, now, prepared.holder_id))
        tail_zh = f"，还可再试{left}次" if left > 0 else "，请改用医保码支付"
        tail_en = f"; {left} more tries" if left > 0 else "; pay with the payment code instead"
        if outcome == "liveness_failed":
            return Forbidden("liveness", "liveness_failed", "活体检测未通过" + tail_zh, "the liveness check failed" + tail_en)
        return Forbidden("capture", "face_mismatch", "人脸比对不一致" + tail_zh, "the face does not match the enrolled face" + tail_en)
    person = people.require(conn, prepared.person_id)
    auth = FaceAuthorization("FA" + secrets.token_hex(16).upper(), prepared.person_id, prepared.holder_id, prepared.relation,
                             person.region, institution.id, terminal_id, now + AUTHORIZATION_TTL)
    insert_ignore(conn, AU, dict(id=auth.id, region=institution.region, person_id=auth.person_id, holder_id=auth.holder_id,
                                 relation=auth.relation, institution_id=auth.institution_id, terminal_id=terminal_id or "",
                                 status="live", expires_at=auth.expires_at, used_at=None, created_at=now))
    # The verified face is its owner's presence here, as long as the authorization lives (services/care/presence.py).
    presence.record(conn, now, kind="face", credential_id=auth.id, institution=institution, person_id=auth.person_id,
                    owner_id=auth.holder_id, ttl=AUTHORIZATION_TTL, terminal_id=terminal_id)
    return auth


def consume(conn: Connection, now: datetime, *, authorization_id: str, institution: Institution) -> FaceAuthorization:
    """Use an authorization once, at the institution it was made for (the payment flow calls this)."""
    row = conn.execute(select(AU).where(AU.c.id == authorization_id, AU.c.institution_id == institution.id)).first()
    if row is None:
        raise NotFound("face_authorization", "face_authorization_unknown", "刷脸授权不存在", "no such face authorization at this institution")
    won = conn.execute(update(AU).where(AU.c.id == row.id, AU.c.status == "live", AU.c.expires_at > now)
                       .values(status="used", used_at=now).returning(AU.c.id)).first()
    if won is None:
        if row.status == "used":
            raise Conflict("face_authorization", "face_authorization_used", "该刷脸授权已使用", "this face authorization was already used")
        raise Conflict("face_authorization", "face_authorization_expired", "刷脸授权已过期，请重新刷脸", "the face authorization expired; scan the face again")
    # Its presence, locked before the audit entry below (a settlement takes a presence, then the audit head): used up by
    # a settlement at the counter, the authorization pays nothing more (this unit rolls back, the authorization with it).
    try:
        presence.take(conn, now, kind="face", credential_id=row.id, institution_id=institution.id, field="face_authorization")
    except Conflict as exc:
        if exc.code == "presence_used":
            raise Conflict("face_authorization", "face_authorization_used", "该刷脸授权已使用", "this face authorization was already used") from None
        raise
    person = people.require(conn, row.person_id)
    audit.append(conn, region=row.region, actor=f"his:{institution.id}", action="face_pay.consume", subject=row.person_id,
                 detail={"authorization": row.id, "holder": row.holder_id}, now=now)
    return FaceAuthorization(row.id, row.person_id, row.holder_id, row.relation, person.region, row.institution_id,
                             row.terminal_id or None, _utc(row.expires_at))


def view(conn: Connection, keyring: Keyring, auth: FaceAuthorization) -> dict:
    """What the terminal learns: who was verified (masked), for whom, and until when the authorization holds."""
    patient = people.require(conn, auth.person_id)
    holder = patient if auth.holder_id == auth.person_id else people.require(conn, auth.holder_id)
    return {"face_authorization": auth.id, "psn_no": patient.id, "psn_name": mask_name(keyring.decrypt(patient.name_enc, "name")),
            "insuplc_admdvs": auth.insured_region, "payer_psn_no": holder.id,
            "payer_name": mask_name(keyring.decrypt(holder.name_enc, "name")), "relation": auth.relation,
            "terminal_id": auth.terminal_id, "expires_at": iso_utc(auth.expires_at)}


async def check(ctx: Context, *, institution: Institution, person_id: str, payer_id: str | None, terminal_id: str | None, actor: str,
                capture: str | None = None, liveness: dict[str, Any] | None = None,
                capture_of: Callable[[Connection, str], tuple[str, dict[str, Any]]] | None = None
                ) -> Callable[[Connection], FaceAuthorization | YibaoError]:
    """Steps 1 and 2 — `prepare` (a unit) and the verifier's 1:1 comparison (a call) — then step 3 handed back:
    the unit that records the answer, for the caller to run (with its idempotency record, when it keeps one).
    That unit returns a failed check rather than raising it, so the counted attempt commits before it is said.

    The capture is the terminal's (``capture``, ``liveness``); or, when what is shown to the camera depends on
    whose face is asked for (the demo's synthetic samples), ``capture_of(conn, holder_id)`` draws it in the
    prepare unit, after its checks — so a payer who may not pay here is refused before anything about them is read."""
    def prepared_capture(c: Connection) -> tuple[Prepared, str, dict[str, Any]]:
        prepared = prepare(c, ctx.keyring, ctx.now(), institution=institution, person_id=person_id, payer_id=payer_id, actor=actor)
        shown, live = capture_of(c, prepared.holder_id) if capture_of is not None else (capture, liveness)
        assert shown is not None
        return prepared, shown, live

    prepared, shown, live = await ctx.run(prepared_capture)  # `live`: the terminal's claim, not trusted (the verifier decides)
    checked = await ctx.verifier().verify(prepared.template_id, shown, live)
    return lambda c: record(c, ctx.now(), institution=institution, prepared=prepared, terminal_id=terminal_id, match=checked.match,
                            liveness=checked.liveness, similarity=checked.similarity, actor=actor)


# ---- paying with the authorization ----------------------------------------------------------------


def start(conn: Connection, now: datetime, *, institution: Institution, request_key: str, request_hash: str, authorization_id: str,
               visit_id: str | None, lines: list[dict] | None, actor: str) -> Order:
    """刷脸支付, first unit: use the face authorization once (`face_pay.consume`), register the visit (with
    ``lines``), record the order ``created`` (method ``face``; the payer is the authorization's holder).

    A retry of the same request finds its order. A refused authorization (unknown, used, expired) or a
    malformed request raises and rolls the whole unit back: the authorization is not used by a refusal.
    """
    existing = payments.existing_for(conn, institution, request_key, request_hash)
    if existing is not None:
        return existing
    if (visit_id is None) == (lines is None):
        raise InputError("visit_id", "visit_or_lines", "请给出 visit_id（已上传明细）或 lines（明细）之一",
                         "give either visit_id (fee lines already uploaded) or lines")
    pilots.require(conn, now, institution_id=institution.id, mode="face")  # before the authorization is used
    auth = consume(conn, now, authorization_id=authorization_id, institution=institution)
    if visit_id is not None and visits.get(conn, institution.id, visit_id).person_id != auth.person_id:
        raise Conflict("visit_id", "visit_other_person", "该刷脸授权不属于此次就诊的参保人",
                       "the face authorization is for another person than the visit's")
    visit = payments.visit_for(conn, now, institution, auth.person_id, visit_id, lines)
    face_presence = presence.of_credential(conn, "face", auth.id)  # taken (locked) by consume
    assert face_presence is not None
    presence.bind(conn, now, face_presence, visit_id=visit.id, field="face_authorization")  # the face shown now pays this visit
    return payments.insert_order(conn, now, institution=institution, request_key=request_key, request_hash=request_hash, method="face",
                         visit=visit, person_id=auth.person_id, payer_id=auth.holder_id, paycode_id=None,
                         terminal_id=auth.terminal_id, actor=actor)


async def pay(ctx: Context, *, institution: Institution, request_key: str, request_hash: str, authorization_id: str,
               visit_id: str | None, lines: list[dict] | None, use_account: bool, actor: str, pay_by: str = "channel") -> Order:
    """刷脸支付: the face authorization (a verified 1:1 match, single use) in place of the code; then the same flow."""
    now = ctx.now()
    started = await ctx.run(lambda c: start(c, now, institution=institution, request_key=request_key,
                                                          request_hash=request_hash, authorization_id=authorization_id,
                                                          visit_id=visit_id, lines=lines, actor=actor))
    return await cash_leg.drive(ctx, started, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by)
