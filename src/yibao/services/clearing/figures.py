"""The platform's own figures for an institution's month: what the fund and personal accounts paid it, net of cancels,
reversals and refunds — read from the ledger (its receivable's transfers dated in the month), never from what the
institution declared — and the backstop-liability charges confirmed against it that month.

A transfer belongs to the month it was written in (Beijing time): a cancel in December of a November settlement counts
in December, so a month already cleared never changes afterwards and nothing is paid, or recovered, twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import case, func, select
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
    """The month's figures for one clr_type. Computed as the institution's whole month (its receivable's transfers, its
    settlements — no join, on their own indexes) less the part of visits of the other clr_types (found from the
    institution's visits, which are few of another kind where there are any): a pharmacy or an outpatient clinic, whose
    visits are all of one kind, costs one pass over its month (bench/books.py)."""
    start, end = _bounds(month)
    others = tuple(k for kinds in CLR_TYPES.values() for k in kinds if k not in CLR_TYPES[clr_type])
    receivable = institution_receivable(institution_id)
    # The account's legs are named `{setl_id}:account…` (services/care/settlement.py); the rest are the fund's layers.
    account_part = func.coalesce(func.sum(case((T.c.client_id.like("%:account%"), T.c.amount), else_=0)), 0)
    in_month = (T.c.kind.in_(("single", "post")), T.c.code.in_(SETTLEMENT_CODES), T.c.created_at >= start, T.c.created_at < end)
    other_refs = (select(S.c.id).select_from(V.join(S, S.c.visit_id == V.c.id))
                  .where(V.c.institution_id == institution_id, V.c.kind.in_(others)))
    fund = account = 0
    # One statement per side, each on its account index (an OR of the two would scan); then the other kinds' part.
    for side, sign in ((T.c.credit_account_id, 1), (T.c.debit_account_id, -1)):
        for where, times in (((), 1), ((T.c.ref.in_(other_refs),), -1)):
            total, acct = conn.execute(select(func.coalesce(func.sum(T.c.amount), 0), account_part).where(side == receivable, *in_month, *where)).one()
            account += sign * times * int(acct)
            fund += sign * times * (int(total) - int(acct))
    recoveries = int(conn.execute(
        select(func.coalesce(func.sum(L.c.amount), 0))
        .select_from(L.join(O, O.c.id == L.c.order_id).join(S, S.c.id == O.c.setl_id).join(V, V.c.id == S.c.visit_id))
        .where(L.c.institution_id == institution_id, L.c.created_at >= start, L.c.created_at < end, V.c.kind.notin_(others))).scalar_one())
    standing = (S.c.institution_id == institution_id, S.c.status.in_(("settled", "partial")), S.c.created_at >= start, S.c.created_at < end)
    sums = (func.count(), func.coalesce(func.sum(S.c.total), 0), func.coalesce(func.sum(S.c.cash_pay), 0))
    count, total, cash = conn.execute(select(*sums).where(*standing)).one()
    o_count, o_total, o_cash = conn.execute(select(*sums).select_from(V.join(S, S.c.visit_id == V.c.id))
                                            .where(*standing, V.c.institution_id == institution_id, V.c.kind.in_(others))).one()
    return Figures(fund, account, recoveries, int(count) - int(o_count), int(total) - int(o_total), int(cash) - int(o_cash))
