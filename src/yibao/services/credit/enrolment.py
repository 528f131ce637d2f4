"""Enrolment in credit payment: the holder accepts the terms (the version recorded with the time); the bank
scores them and grants a line, which the platform caps by the region's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels import AgreementRequest, ChannelError, Declined
from yibao.channels.bank.connector import CreditConsent, CreditLine
from yibao.crypto.pii import Keyring
from yibao.domain import credit as rules_
from yibao.domain.credit import EligibilityFacts
from yibao.domain.errors import Conflict, NotFound
from yibao.services import Context
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit, ledger
from yibao.services.credit import lines
from yibao.services.people import bindings
from yibao.services.people import persons as people
from yibao.store.tables import credit_enrolments as CE


def _start_enrolment(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, pi_id: str, consent_version: str | None,
                     actor: str) -> tuple[str, datetime, str, int]:
    person = people.require(conn, holder_id)
    rules = lines.credit_rules(person.region, now)
    pi = pis.get(conn, pi_id)
    if pi is None or pi.region != person.region or pi.kind != "bank":
        raise NotFound("payment_institution_id", "not_a_bank", "本统筹区没有该信用支付银行", "no such credit-payment bank in your region")
    if pi.status != "admitted":
        raise Conflict("payment_institution_id", "not_admitted", "该银行未准入或已暂停", "this bank is not admitted (or suspended)")
    rules_.require_eligible(EligibilityFacts(age=person.age_on(lines.beijing_day(now)), insured_active=person.status == "active",
                                             consent_version=consent_version, ecard_bound_to_bank=bindings.is_bound(conn, holder_id, pi_id)),
                            rules)
    row = conn.execute(select(CE).where(CE.c.person_id == holder_id, CE.c.payment_institution_id == pi_id).with_for_update()).first()
    if row is not None and row.status in ("active", "suspended"):
        raise Conflict("payment_institution_id", "already_enrolled", "已开通该银行的信用支付", "credit payment with this bank is already enrolled")
    if row is None:
        enrolment_id = lines.new_no("CE")
        conn.execute(CE.insert().values(id=enrolment_id, region=person.region, person_id=holder_id, payment_institution_id=pi_id,
                                        status="pending", consent_version=consent_version, consent_accepted_at=now, limit_fen=0,
                                        single_limit=rules.max_line, updated_at=now, created_at=now))
    else:  # a pending one (the bank's answer was lost) or one refused before: the same agreement number again
        enrolment_id = row.id
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="pending", consent_version=consent_version, consent_accepted_at=now,
                                                                refusal_code=None, single_limit=rules.max_line, updated_at=now))
    audit.append(conn, region=person.region, actor=actor, action="credit.consent", subject=holder_id,
                 detail={"enrolment": enrolment_id, "payment_institution_id": pi_id, "consent_version": consent_version}, now=now)
    return enrolment_id, now, lines.token_for(keyring, holder_id, pi_id), rules.max_line


def _activate(conn: Connection, now: datetime, enrolment_id: str, agreement_no: str, line: CreditLine, actor: str) -> dict[str, Any]:
    row = lines.enrolment_row(conn, enrolment_id, lock=True)
    if row.status == "pending":
        account = rules_.line_account(row.id)
        ledger.ensure_account(conn, account, row.region, "credit_line", now, owner_id=row.person_id, no_overdraft=True)
        ledger.ensure_account(conn, rules_.grants_account(row.payment_institution_id), row.region, "bank_credit_lines", now,
                              owner_id=row.payment_institution_id)
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="active", agreement_no=agreement_no, score=line.score,
                                                                bank_limit=line.limit_fen, bank_status=line.status, updated_at=now))
        limit = lines.set_limit(conn, lines.enrolment_row(conn, row.id), rules_.line_limit(line.limit_fen, lines.credit_rules(row.region, now)), now)
        audit.append(conn, region=row.region, actor=actor, action="credit.enrol", subject=row.person_id,
                     detail={"enrolment": row.id, "score": line.score, "bank_limit": line.limit_fen, "limit": limit}, now=now)
    return lines.enrolment_view(conn, lines.enrolment_row(conn, enrolment_id), now)


def _refuse_enrolment(conn: Connection, now: datetime, enrolment_id: str, code: str, actor: str) -> None:
    row = lines.enrolment_row(conn, enrolment_id, lock=True)
    conn.execute(update(CE).where(CE.c.id == enrolment_id).values(status="refused", refusal_code=code, updated_at=now))
    audit.append(conn, region=row.region, actor=actor, action="credit.refused", subject=row.person_id,
                 detail={"enrolment": enrolment_id, "bank_code": code}, now=now)


async def enrol(ctx: Context, *, holder_id: str, pi_id: str, consent_version: str | None, actor: str) -> dict[str, Any]:
    """The holder accepts the terms (version recorded with the time); the bank scores them and grants a line."""
    bank = await ctx.bank(pi_id)
    now = ctx.now()
    enrolment_id, accepted_at, token, single_limit = await ctx.run(lambda c: _start_enrolment(
        c, ctx.keyring, now, holder_id=holder_id, pi_id=pi_id, consent_version=consent_version, actor=actor))
    try:
        agreement = await bank.enrol(AgreementRequest(enrolment_id, token, single_limit), CreditConsent(consent_version or "", accepted_at))
        line = await bank.credit_line(enrolment_id)
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refuse_enrolment(c, ctx.now(), enrolment_id, e.code, actor))
        raise rules_.bank_refusal("payment_institution_id", exc.code) from None
    except ChannelError as exc:
        raise lines.outcome_unknown("payment_institution_id", "开通", "enrolment", enrolment_id, exc) from exc  # stays pending; enrolling again resends it
    return await ctx.run(lambda c: _activate(c, ctx.now(), enrolment_id, agreement.agreement_no, line, actor))
