"""The bank account behind a financial social-security card (具有金融功能的社保卡, seed 001).

A financial card is also a bank card: the card's bank holds an account under it, and other agencies pay subsidies into
that account (services/benefits). The platform records which bank and which number, as the bank reported them when the
card was made; the number is PII, stored encrypted and shown masked. Only a physical financial card that is not
cancelled has one; recording it again replaces it (a replacement card's new account, say).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.formats.timefmt import iso_utc
from yibao.services.books import audit
from yibao.services.people import cards
from yibao.store.tables import card_accounts as CA
from yibao.store.tables import cards as C
from yibao.store.tables import payment_institutions as PI

_ACCOUNT_NO = re.compile(r"^[0-9]{12,19}$")  # a bank card number's length (the bank decides whether it is valid)
HOLDING = ("in_production", "issued", "active")  # a card whose account can still be paid into [guess: a lost card's account stays open
# at the bank, but the platform stops paying into it until the holder is re-carded]


@dataclass(frozen=True)
class FinancialAccount:
    card_id: str
    person_id: str
    region: str
    bank_id: str
    account_no_enc: bytes
    account_last4: str


def record(conn: Connection, keyring: Keyring, now: datetime, *, card_id: str, bank_id: str, account_no: str, actor: str) -> dict[str, Any]:
    """Record (or replace) the bank account of a financial card."""
    number = account_no.strip().replace(" ", "")
    if not _ACCOUNT_NO.match(number):
        raise InputError("account_no", "invalid_account_no", "银行账号应为12–19位数字", "the account number must be 12–19 digits")
    card = cards.get(conn, card_id, lock=True)
    if card is None:
        raise NotFound("card_id", "not_found", "卡片不存在", "card not found")
    if card.kind != "physical" or not card.financial:
        raise Conflict("card_id", "not_financial", "只有具有金融功能的实体社保卡才有银行账户",
                       "only a physical social-security card with the financial function has a bank account")
    if card.status not in HOLDING:
        raise Conflict("card_id", f"card_{card.status}", f"该卡状态为 {card.status}，不能登记银行账户",
                       f"the card is {card.status}: no bank account can be recorded for it")
    bank = conn.execute(select(PI).where(PI.c.id == bank_id)).first()
    if bank is None or bank.kind != "bank":
        raise NotFound("bank", "not_found", "银行不存在（须为已准入的银行）", "bank not found (it must be an admitted bank)")
    values = dict(region=card.region, bank_id=bank_id, account_no_enc=keyring.encrypt(number, "card_account"), account_last4=number[-4:],
                  actor=actor, updated_at=now)
    if conn.execute(select(CA.c.card_id).where(CA.c.card_id == card.id)).first() is None:
        conn.execute(CA.insert().values(card_id=card.id, created_at=now, **values))
    else:
        conn.execute(update(CA).where(CA.c.card_id == card.id).values(**values))
    audit.append(conn, region=card.region, actor=actor, action="card.account", subject=card.person_id,
                 detail={"card_id": card.id, "bank": bank_id, "account": f"****{number[-4:]}"}, now=now)
    return view(conn, card.id)  # type: ignore[return-value]


def view(conn: Connection, card_id: str) -> dict[str, Any] | None:
    r = conn.execute(select(CA).where(CA.c.card_id == card_id)).first()
    if r is None:
        return None
    return {"card_id": r.card_id, "bank": r.bank_id, "account_no": f"****{r.account_last4}", "updated_at": iso_utc(r.updated_at)}


def financial_account(conn: Connection, person_id: str) -> FinancialAccount | None:
    """The person's card account that can be paid into now: their live physical financial card with an account recorded."""
    r = conn.execute(select(C.c.id, C.c.person_id, C.c.region, CA.c.bank_id, CA.c.account_no_enc, CA.c.account_last4)
                     .join(CA, CA.c.card_id == C.c.id)
                     .where(C.c.person_id == person_id, C.c.kind == "physical", C.c.financial.is_(True), C.c.status.in_(HOLDING))
                     .order_by(C.c.created_at.desc()).limit(1)).first()
    if r is None:
        return None
    return FinancialAccount(r.id, r.person_id, r.region, r.bank_id, bytes(r.account_no_enc), r.account_last4)
