"""Personal-account credits (个人账户划入): money drawn from the region's contributions collected, never minted.

A credit draws from the person's region's contributions account (services/books/contributions.py), which
cannot go below zero: a credit above what was collected and not yet credited is refused in words. A credit
above the region's threshold (policy `personal_account.credit_approval_threshold`) needs a second operator:
one operator requests it (recorded and audited, nothing moves), a different one approves it (audited; the
money moves then, once, whoever approves again). At or below the threshold the request credits at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.domain.ledger import AccountLimitExceeded, InsufficientFunds, contributions_account, person_account
from yibao.domain.money import MAX_FEN, format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit, contributions, ledger
from yibao.services.people import persons
from yibao.store.rows import one_or
from yibao.store.tables import account_credits as C
from yibao.store.tables import ledger_accounts as A

AWAITING, CREDITED = "awaiting_approval", "credited"


@dataclass(frozen=True)
class Credit:
    id: str
    region: str
    person_id: str
    amount: int
    client_id: str
    status: str
    requested_by: str
    approved_by: str | None
    credited_at: datetime | None
    created_at: datetime

    def view(self, balance: int | None = None) -> dict[str, Any]:
        doc = {"credit_id": self.id, "psn_no": self.person_id, "region": self.region, "amount": format_yuan(self.amount),
               "status": self.status, "requested_by": self.requested_by, "approved_by": self.approved_by,
               "credited_at": iso_utc(self.credited_at) if self.credited_at else None, "created_at": iso_utc(self.created_at)}
        if balance is not None:
            doc["balance"] = format_yuan(balance)
        return doc


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else (at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at)


def _credit(r: Any) -> Credit:
    return Credit(r.id, r.region, r.person_id, int(r.amount), r.client_id, r.status, r.requested_by, r.approved_by, _utc(r.credited_at),
                  _utc(r.created_at))  # type: ignore[arg-type]


def get(conn: Connection, credit_id: str, *, lock: bool = False) -> Credit:
    return _credit(one_or(conn, C, C.c.id == credit_id, lock=lock, missing=NotFound("credit_id", "not_found", "划入申请不存在", "no such account credit")))


def listing(conn: Connection, *, status: str | None = None, region: str | None = None, limit: int = 100) -> list[Credit]:
    q = select(C).order_by(C.c.created_at.desc(), C.c.id.desc()).limit(limit)
    if status is not None:
        q = q.where(C.c.status == status)
    if region is not None:
        q = q.where(C.c.region == region)
    return [_credit(r) for r in conn.execute(q).all()]


def threshold(region: str, now: datetime) -> int:
    return policy_for(region, now.year).account.credit_approval_threshold


def _exceeds_collected(region: str, amount: int, available: int) -> Conflict:
    return Conflict("amount", "exceeds_collected",
                    f"划入金额¥{format_yuan(amount)}超过统筹区 {region} 已归集未划入的缴费¥{format_yuan(available)}：请先登记缴费归集",
                    f"the credit of ¥{format_yuan(amount)} exceeds the contributions collected and not yet credited in region {region} "
                    f"(¥{format_yuan(available)}): record the collection first")


def request(conn: Connection, now: datetime, *, person_id: str, amount: int, client_id: str, actor: str) -> Credit:
    """Ask for a credit of ``amount`` fen to the person's account. At or below the region's threshold it is credited
    now; above, it waits for a second operator's `approve`. The same ``client_id`` again is the same request."""
    existing = conn.execute(select(C).where(C.c.client_id == client_id)).first()
    if existing is not None:
        if (existing.person_id, int(existing.amount)) != (person_id, amount):
            raise Conflict("client_id", "client_id_reused", "该请求号已用于另一笔划入", "this request id was already used for a different credit")
        return _credit(existing)
    person = persons.require(conn, person_id)
    account = person_account(person_id)
    row = conn.execute(select(A.c.credits_posted, A.c.credits_pending).where(A.c.id == account)).first()
    if row is None:
        raise InputError("person_id", "no_personal_account", "该参保人没有个人账户", "this person has no personal account")
    if amount <= 0:
        raise InputError("amount", "not_positive", "划入金额必须大于0", "a credit must be more than 0")
    if amount > MAX_FEN or int(row.credits_posted) + int(row.credits_pending) + amount > MAX_FEN:
        raise AccountLimitExceeded(account, amount)  # whatever is collected, this account cannot take it
    available = contributions.summary(conn, person.region).available
    if amount > available:
        raise _exceeds_collected(person.region, amount, available)
    limit = threshold(person.region, now)
    credit_id = f"AC{now:%Y%m%d}{secrets.token_hex(6).upper()}"
    conn.execute(C.insert().values(id=credit_id, region=person.region, person_id=person_id, amount=amount, client_id=client_id,
                                   status=AWAITING, requested_by=actor, created_at=now))
    audit.append(conn, region=person.region, actor=actor, action="account.credit_request", subject=person_id,
                 detail={"credit": credit_id, "amount": amount, "threshold": limit, "needs_approval": amount > limit}, now=now)
    if amount <= limit:
        return _move(conn, now, get(conn, credit_id), approver=None, actor=actor)
    return get(conn, credit_id)


def approve(conn: Connection, now: datetime, *, credit_id: str, actor: str) -> Credit:
    """A second operator approves a credit awaiting approval: the money moves now. Approving a credited one again
    changes nothing; its requester cannot approve it."""
    credit = get(conn, credit_id, lock=True)
    if credit.status == CREDITED:
        return credit
    if actor == credit.requested_by:
        raise Forbidden("credit_id", "same_operator", "超过限额的划入须由另一位经办人员审批，申请人不能审批自己的申请",
                        "a credit above the threshold must be approved by a second operator, not by the one who requested it")
    return _move(conn, now, credit, approver=actor, actor=actor)


def _move(conn: Connection, now: datetime, credit: Credit, *, approver: str | None, actor: str) -> Credit:
    try:
        ledger.transfer(conn, client_id=credit.client_id, debit=contributions_account(credit.region), credit=person_account(credit.person_id),
                        amount=credit.amount, code="contribution", region=credit.region, now=now, ref=credit.person_id)
    except InsufficientFunds:  # drawn by other credits since the request
        raise _exceeds_collected(credit.region, credit.amount, contributions.summary(conn, credit.region).available) from None
    conn.execute(update(C).where(C.c.id == credit.id).values(status=CREDITED, approved_by=approver, credited_at=now))
    audit.append(conn, region=credit.region, actor=actor, action="account.credit", subject=credit.person_id,
                 detail={"credit": credit.id, "amount": credit.amount, "transfer": credit.client_id, "requested_by": credit.requested_by,
                         "approved_by": approver}, now=now)
    return get(conn, credit.id)


def credit_account(conn: Connection, now: datetime, *, person_id: str, amount: int, client_id: str, actor: str) -> int:
    """Credit at once (a monthly credit, an import, the demo's opening balance): at or below the threshold only;
    returns the account's balance. Above it, `request` and a second operator's `approve`."""
    credit = request(conn, now, person_id=person_id, amount=amount, client_id=client_id, actor=actor)
    if credit.status != CREDITED:
        raise Conflict("amount", "needs_approval", f"划入金额超过¥{format_yuan(threshold(credit.region, now))}，须另一位经办人员审批",
                       f"a credit above ¥{format_yuan(threshold(credit.region, now))} needs a second operator's approval")
    return ledger.balance(conn, person_account(person_id))
