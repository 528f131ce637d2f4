"""Contributions collected (缴费归集): the only source of personal-account credits.

Money enters the books from outside when an operator (or a contributions import) records a collection:
a transfer from the region's contributions source (what employers and employees paid in) into its
contributions account. That account is no-overdraft (the ledger's conditional UPDATE and CHECK), and
personal-account credits draw from it (services/people/account_credits.py): nothing can be credited that
was not collected first, and the ledger still sums to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError
from yibao.domain.ledger import contributions_account, contributions_source
from yibao.domain.money import MAX_FEN, format_yuan
from yibao.services.books import audit, ledger
from yibao.store.tables import ledger_accounts as A

REFERENCE_MAX = 60


@dataclass(frozen=True)
class Contributions:
    region: str
    collected: int  # fen: every collection recorded
    credited: int  # fen: drawn by personal-account credits (and held)
    available: int  # fen: what may still be credited

    def view(self) -> dict[str, Any]:
        return {"region": self.region, "collected": format_yuan(self.collected), "credited": format_yuan(self.credited),
                "available": format_yuan(self.available)}


def summary(conn: Connection, region: str) -> Contributions:
    row = conn.execute(select(A.c.credits_posted, A.c.debits_posted, A.c.debits_pending)
                       .where(A.c.id == contributions_account(region))).first()
    if row is None:
        return Contributions(region, 0, 0, 0)
    drawn = int(row.debits_posted) + int(row.debits_pending)
    return Contributions(region, int(row.credits_posted), drawn, int(row.credits_posted) - drawn)


def record_collection(conn: Connection, now: datetime, *, region: str, amount: int, reference: str, actor: str) -> Contributions:
    """Record money collected into ``region``'s contributions (its bank receipt or import batch: ``reference``).
    The same reference twice is one collection (a retry); with another amount it is refused."""
    reference = (reference or "").strip()
    if not reference or len(reference) > REFERENCE_MAX:
        raise InputError("reference", "invalid_reference", f"归集凭证号应为1–{REFERENCE_MAX}个字符（银行回单号或导入批次号）",
                         f"must be 1–{REFERENCE_MAX} characters: the bank receipt or import batch the money came with")
    if amount <= 0 or amount > MAX_FEN:
        raise InputError("amount", "invalid_amount", "归集金额应大于0", "a collection must be more than 0")
    if conn.execute(select(A.c.id).where(A.c.id == contributions_account(region))).first() is None:
        raise InputError("region", "unknown_region", f"统筹区 {region} 尚无账户", f"region {region} has no accounts yet")
    ledger.ensure_account(conn, contributions_source(region), region, "external_contributions", now)
    client_id = f"collection:{region}:{reference}"
    existing = ledger.get_transfer(conn, client_id)
    if existing is not None and existing.amount != amount:
        raise Conflict("reference", "reference_reused", f"凭证号 {reference} 已登记过另一笔归集（¥{format_yuan(existing.amount)}）",
                          f"reference {reference} already recorded another collection (¥{format_yuan(existing.amount)})")
    if existing is None:
        ledger.transfer(conn, client_id=client_id, debit=contributions_source(region), credit=contributions_account(region), amount=amount,
                        code="contribution_collection", ref=reference, region=region, now=now)
        audit.append(conn, region=region, actor=actor, action="contributions.collect", subject=reference[:80],
                     detail={"amount": amount, "transfer": client_id}, now=now)
    return summary(conn, region)
