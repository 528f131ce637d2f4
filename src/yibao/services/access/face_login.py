"""Real-name log-in (实名登录): the holder's name and ID number, and a live face 1:1 with the enrolled one.

The face verifier is called by the entry point between two units of work, never inside one:
`prepare` checks the name and ID number against the enrolment record and hands out the template
reference; `record` stores the verifier's answer and, for a match with liveness passed, opens the
same session an SMS log-in opens (sessions.open_session).

Failures are counted per person (name wrong, face wrong, liveness failed): three within ten minutes
lock real-name log-in for that person until the window passes (the SMS code still works). A refusal
is *returned*, not raised, so the caller commits the counted attempt before showing it. Every refusal
of the credentials has the same words, so the answer does not tell which of name, number or face was
wrong; an ID number that is not enrolled is refused in the same words and counts nothing (there is
no one to count it against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import Conflict, TooManyAttempts, Unauthorized, YibaoError
from yibao.domain.identity import parse_id_number
from yibao.domain.names import check_name
from yibao.face.client import check_capture
from yibao.services import Context
from yibao.services.access import attempts, sessions
from yibao.services.books import audit
from yibao.services.people import identity
from yibao.services.people import persons as people
from yibao.store.tables import face_logins as FL

ATTEMPT_LIMIT = 3
WINDOW = timedelta(minutes=10)
PER_PERSON = AttemptLimit(ATTEMPT_LIMIT, WINDOW)
ACTOR = "patient:real-name-login"


@dataclass(frozen=True)
class Prepared:
    person_id: str
    region: str
    template_id: str


def _refused() -> Unauthorized:
    return Unauthorized("credentials", "real_name_login_failed", "实名信息或人脸核验未通过，请核对后重试，或使用短信验证码登录",
                        "the name, ID number or face did not check out; check them and try again, or log in with an SMS code")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _lockout(conn: Connection, now: datetime, person_id: str) -> TooManyAttempts | None:
    """Failures since the person's latest success within the window; the limit reached locks until the oldest ages out."""
    failures = attempts.failures(conn, FL, PER_PERSON, now, FL.c.person_id == person_id, failed=FL.c.outcome != "verified",
                                 succeeded=FL.c.outcome == "verified")
    retry_after = PER_PERSON.retry_after(failures, now)
    if retry_after is None:
        return None
    return TooManyAttempts("credentials", "real_name_login_locked", f"实名登录失败已达{ATTEMPT_LIMIT}次，请{math.ceil(retry_after / 60)}分钟后再试，或使用短信验证码登录",
                           f"{ATTEMPT_LIMIT} failed real-name log-ins: try again in {math.ceil(retry_after / 60)} min, or log in with an SMS code",
                           retry_after)


def _count(conn: Connection, now: datetime, person: people.Person, outcome: str, detail: dict | None = None) -> None:
    conn.execute(FL.insert().values(region=person.region, person_id=person.id, outcome=outcome, created_at=now))
    audit.append(conn, region=person.region, actor=ACTOR, action=f"session.real_name_{outcome}", subject=person.id, detail=detail or {}, now=now)


def prepare(conn: Connection, keyring: Keyring, now: datetime, *, id_number: str, name: str) -> Prepared | YibaoError:
    """Step 1: the name and ID number against the enrolment record; the template to check the face against."""
    number, _ = parse_id_number(id_number)  # a malformed number is an input error, said as such (it names no one)
    given = check_name(name)
    person = people.find_by_id_number(conn, keyring, number)
    if person is None:
        return _refused()
    locked = _lockout(conn, now, person.id)
    if locked is not None:
        return locked
    if person.status != "active":
        return _refused()
    if keyring.decrypt(bytes(person.name_enc), "name") != given:
        _count(conn, now, person, "name_mismatch")
        return _refused()
    status = identity.status(conn, person.id)
    if not status["face_enrolled"]:
        return Conflict("face_template", "face_not_enrolled", "尚未采集人脸，不能实名登录；请使用短信验证码登录，或到经办机构采集人脸",
                        "no face is enrolled: log in with an SMS code, or enrol your face at the agency")
    template = identity.enrolled_template(conn, keyring, now, person_id=person.id, actor=ACTOR, purpose="real_name_login")
    return Prepared(person.id, person.region, template)


def record(conn: Connection, keyring: Keyring, now: datetime, *, prepared: Prepared, match: bool, liveness: str,
           similarity: float) -> dict | YibaoError:
    """Step 3: the verifier's answer. A match with liveness passed opens a session; a failure is counted and returned."""
    person = people.require(conn, prepared.person_id)
    attempts.serialise(conn, "face_login:person", person.id)  # one attempt of this person at a time
    locked = _lockout(conn, now, person.id)  # a concurrent attempt may have used the last try since `prepare`
    if locked is not None:
        return locked
    outcome = "liveness_failed" if liveness != "pass" else "face_mismatch" if not match else "verified"
    _count(conn, now, person, outcome, {"similarity": round(similarity, 4)})
    if outcome != "verified":
        return _refused()
    return sessions.open_session(conn, now, person)


async def log_in(ctx: Context, *, id_number: str, name: str, capture: str, liveness: dict[str, Any] | None = None) -> dict:
    """The whole log-in: prepare (a unit), the verifier over HTTP, record (a unit); a refusal raised after its commit."""
    verifier = ctx.verifier()  # none configured: refused before anything is looked at, counted or audited
    check_capture(capture)  # a capture that is plainly no PNG is refused before it costs a try
    prepared = await ctx.run(lambda c: prepare(c, ctx.keyring, ctx.now(), id_number=id_number, name=name))
    if isinstance(prepared, YibaoError):
        raise prepared
    checked = await verifier.verify(prepared.template_id, capture, liveness)
    result = await ctx.run(lambda c: record(c, ctx.keyring, ctx.now(), prepared=prepared, match=checked.match, liveness=checked.liveness,
                                            similarity=checked.similarity))
    if isinstance(result, YibaoError):
        raise result
    return result
