"""A personal account as its holder sees it: whether there is one, its balance and what it can pay.
Read only; the ledger (services/books/ledger.py) moves the money."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.ledger import person_account
from yibao.services.books import ledger
from yibao.store.tables import ledger_accounts as A


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
