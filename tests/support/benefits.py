"""Set-up for benefits onto the card: holders' financial cards with their accounts at the SANDBOX bank."""

from __future__ import annotations

import httpx

from tests.support.identity import active_card
from yibao.services.people import card_accounts


def luhn_account(n: int, prefix: str = "621700") -> str:
    """A 19-digit account number passing the Luhn check (the sandbox bank's rule for a valid account)."""
    body = f"{prefix}{n:012d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def card_with_account(db, keyring, person_id: str, bank_id: str, account_no: str) -> str:  # noqa: ANN001
    """An active financial card and its account at ``bank_id``, as an operator records it; the card id."""
    card = active_card(db, keyring, person_id)
    db.run(lambda c: card_accounts.record(c, keyring, db.clock(), card_id=card.id, bank_id=bank_id, account_no=account_no, actor="test"))
    return card.id


def close_account(bank_url: str, account_no: str) -> None:
    """The holder closed the account at the bank: the sandbox returns what is credited to it."""
    httpx.post(f"{bank_url}/sandbox/accounts/closed", json={"account": account_no}, timeout=10).raise_for_status()
