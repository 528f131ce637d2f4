"""A pooling region's own ledger accounts: its funds, contributions and the patients' cash source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from yibao.domain.ledger import FUND_LAYERS, contributions_account, contributions_source, fund_account, patient_cash_source
from yibao.services.books import ledger


def ensure_region(conn: Connection, region: str, now: datetime) -> None:
    for layer in FUND_LAYERS:
        ledger.ensure_account(conn, fund_account(region, layer), region, f"fund_{layer}", now)
    # Credits draw only what was collected into it (services/books/contributions.py): it is never overdrawn.
    ledger.ensure_account(conn, contributions_account(region), region, "contributions", now, no_overdraft=True)
    ledger.ensure_account(conn, contributions_source(region), region, "external_contributions", now)
    ledger.ensure_account(conn, patient_cash_source(region), region, "external_cash", now)
