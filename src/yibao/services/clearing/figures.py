"""The platform's own figures for an institution's month: what the fund and personal accounts paid it, net of cancels,
reversals and refunds — read from the ledger (its receivable's transfers dated in the month), never from what the
institution declared — and the backstop-liability charges confirmed against it that month.

A transfer belongs to the month it was written in (Beijing time): a cancel in December of a November settlement counts
in December, so a month already cleared never changes afterwards and nothing is paid, or recovered, twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from yibao.domain.clearing import CLR_TYPES, Month
from yibao.domain.ledger import institution_receivable
from yibao.store.tables import backstop_liabilities as L
from yibao.store.tables import payment_orders as O
from yibao.store.tables import settlements as S
from yibao.store.tables import transfers as T
from yibao.store.tables import visits as V

# The codes of the transfers that move a receivable for a settlement: the settlement's legs (and their posts, when held
# first), and what undoes them. A backstop liability's transfers (code backstop_liability) are counted as recoveries.
SETTLEMENT_CODES = ("settlement", "cancel", "reversal", "refund")


@dataclass(frozen=True)
class Figures:
    fund: int  # fund paid, net (fen)
    account: int  # personal accounts paid, net
    recoveries: int  # backstop liabilities charged that month
    psntime: int  # settlements of the month still standing (人次)
    medfee_sumamt: int  # their total fees
    cash_payamt: int  # their cash shares


def _bounds(month: Month) -> tuple:
    return month.start.astimezone(timezone.utc), month.end.astimezone(timezone.utc)


def figures(conn: Connection, *, institution_id: str, month: Month, clr_type: str) -> Figures:
    start, end = _bounds(month)
    kinds = CLR_TYPES[clr_type]
    receivable = institution_receivable(institution_id)
    is_account = case((T.c.client_id.like("%:account%"), 1), else_=0)
    fund = account = 0
    # One statement per side, each on its account index (an OR of the two would scan).
    for side, sign in ((T.c.credit_account_id, 1), (T.c.debit_account_id, -1)):
        q = (select(is_account.label("acct"), func.coalesce(func.sum(T.c.amount), 0))
             .select_from(T.join(S, S.c.id == T.c.ref).join(V, V.c.id == S.c.visit_id))
             .where(side == receivable, T.c.kind.in_(("single", "post")), T.c.code.in_(SETTLEMENT_CODES),
                    T.c.created_at >= start, T.c.created_at < end, V.c.kind.in_(kinds))
             .group_by(is_account))
        for acct, amount in conn.execute(q).all():
            if acct:
                account += sign * int(amount)
            else:
                fund += sign * int(amount)
    recoveries = int(conn.execute(
        select(func.coalesce(func.sum(L.c.amount), 0))
        .select_from(L.join(O, O.c.id == L.c.order_id).join(S, S.c.id == O.c.setl_id).join(V, V.c.id == S.c.visit_id))
        .where(L.c.institution_id == institution_id, L.c.created_at >= start, L.c.created_at < end, V.c.kind.in_(kinds))).scalar_one())
    count, total, cash = conn.execute(
        select(func.count(), func.coalesce(func.sum(S.c.total), 0), func.coalesce(func.sum(S.c.cash_pay), 0))
        .select_from(S.join(V, V.c.id == S.c.visit_id))
        .where(and_(S.c.institution_id == institution_id, S.c.status.in_(("settled", "partial")), S.c.created_at >= start,
                    S.c.created_at < end, V.c.kind.in_(kinds)))).one()
    return Figures(fund, account, recoveries, int(count), int(total), int(cash))
