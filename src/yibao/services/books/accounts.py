"""A personal account as its holder sees it: whether there is one, its balance and what it can pay; what each movement
was for (the hospital, whose care) and the month's figures with refunds apart from income.
Read only; the ledger (services/books/ledger.py) moves the money."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.ledger import person_account
from yibao.services.books import ledger
from yibao.store.tables import institutions as I
from yibao.store.tables import ledger_accounts as A
from yibao.store.tables import settlements as S


class AccountSummary(NamedTuple):
    account_id: str
    balance: int  # fen, posted
    available: int  # fen, less what is held by pending transfers


def summary(conn: Connection, person_id: str) -> AccountSummary | None:
    """None for a person without a personal account (a tier-2 employee, a resident, a child)."""
    account = person_account(person_id)
    if conn.execute(select(A.c.id).where(A.c.id == account)).first() is None:
        return None
    return AccountSummary(account, ledger.balance(conn, account), ledger.available(conn, account))


class About(NamedTuple):
    """What a movement of a personal account was for, as its holder reads it: the hospital and the patient."""

    institution: str  # the hospital's name
    patient_id: str  # whose visit (the holder, or the child or relative whose care their account paid)


# The movements whose ref is a settlement id: the payment, its cancellation or reversal, a refund.
SETTLEMENT_CODES = ("settlement", "cancel", "reversal", "refund")
# Money given back for care paid earlier: shown as 退款, never as income.
REFUND_CODES = ("cancel", "reversal", "refund")


def about(conn: Connection, transfers: Iterable[ledger.Transfer]) -> dict[str, About]:
    """Per settlement id among the transfers' refs: the hospital's name and the patient (read only)."""
    refs = sorted({t.ref for t in transfers if t.ref and t.code in SETTLEMENT_CODES})
    if not refs:
        return {}
    rows = conn.execute(select(S.c.id, S.c.person_id, I.c.name).select_from(S.join(I, I.c.id == S.c.institution_id))
                        .where(S.c.id.in_(refs))).all()
    return {r.id: About(r.name, r.person_id) for r in rows}


class MonthFigures(NamedTuple):
    """A month's statement as the holder reads it: money in (account credits), money out (payments), money given back
    (refunds of care paid earlier, not income); opening + income + refunds − payments = closing."""

    income: int
    refunds: int
    payments: int


def month_figures(statement: ledger.Statement) -> MonthFigures:
    refunds = sum(signed for t, signed in statement.lines if t.code in REFUND_CODES and signed > 0)
    income = statement.credits - refunds
    return MonthFigures(income, refunds, statement.debits)
