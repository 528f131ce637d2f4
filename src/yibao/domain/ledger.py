"""Ledger rules: account naming and the errors a transfer can meet. Pure; the SQL is in services/books/ledger.py."""

from __future__ import annotations

from yibao.domain.errors import YibaoError

FUND_LAYERS = ("pool", "serious_illness", "large_amount", "other", "assistance")  # other: oth_pay (a layer the policy reports so)


def person_account(person_id: str) -> str:
    return f"person:{person_id}"


def fund_account(region: str, layer: str) -> str:
    return f"fund:{region}:{layer}"


def contributions_account(region: str) -> str:
    """The region's contributions collected and not yet credited: where personal-account credits come from.
    It may never go below zero (no overdraft), so nothing is credited that was not collected first."""
    return f"fund:{region}:contributions"


def contributions_source(region: str) -> str:
    """Money from outside the ledger: the contributions employers and employees paid in (a collection
    moves it into the region's contributions account)."""
    return f"external:{region}:contributions"


def institution_receivable(institution_id: str) -> str:
    """What the agency owes an institution: fund shares and personal-account payments, cleared later."""
    return f"institution:{institution_id}:receivable"


def institution_cash(institution_id: str) -> str:
    """Cash the institution collected from patients (at the counter, or through a payment institution)."""
    return f"institution:{institution_id}:cash"


def institution_deposit(institution_id: str) -> str:
    """The institution's quality-guarantee deposit (质量保证金) the agency holds back at each monthly clearing, released at
    the annual clearing: moved out of the receivable, still owed to the institution."""
    return f"institution:{institution_id}:deposit"


def clearing_payout(region: str) -> str:
    """Money leaving the ledger: what the agency's bank paid institutions at monthly clearing (services/clearing/)."""
    return f"external:{region}:clearing_payout"


def clearing_account(region: str, other: str) -> str:
    """In ``region``'s books: what is settled with ``other`` region (异地清算). A cross-region transfer is
    split in two through these, so each region's ledger sums to zero on its own."""
    return f"clearing:{region}:{other}"


def patient_cash_source(region: str) -> str:
    """Money from outside the ledger: what patients pay in cash."""
    return f"external:{region}:patient_cash"


def keeps_balance(account_id: str) -> bool:
    """Whether an account keeps a running balance row (and so is locked by the units that move it).

    Only accounts that must never be overdrawn do: a personal account, a credit line, a region's
    contributions not yet credited — their balance must be read and checked inside the unit that
    debits them, under the row's lock. Every other account (a fund layer, a hospital's receivable and
    cash, clearing between regions, the outside world) may run either way, so its balance is derived
    from its transfers when read and no unit ever writes, or waits on, a row of its own: two settlements
    of one region never queue behind each other's commit (issue 13, docs/benchmarks.md).
    """
    return account_id.startswith(("person:", "credit:")) or (account_id.startswith("fund:") and account_id.endswith(":contributions"))


def lock_order(account_id: str) -> tuple[int, str]:
    """The order in which one unit of work locks several ledger accounts (docs/architecture.md, the lock
    order): personal accounts first — a settlement locks the paying account early, to read its balance —
    then every other account by id."""
    return (0 if account_id.startswith("person:") else 1, account_id)


class LedgerError(YibaoError):
    pass


class InsufficientFunds(LedgerError):
    def __init__(self, account_id: str, amount: int, available: int) -> None:
        from yibao.domain.money import format_yuan

        super().__init__("amount", "insufficient_funds", f"账户余额不足：需要¥{format_yuan(amount)}，可用¥{format_yuan(available)}",
                         f"insufficient balance: needs ¥{format_yuan(amount)}, available ¥{format_yuan(available)}")
        self.account_id = account_id


class AccountLimitExceeded(LedgerError):
    """A transfer that would take an account's debits or credits past MAX_FEN (numeric(16,2))."""

    def __init__(self, account_id: str, amount: int) -> None:
        from yibao.domain.money import MAX_FEN, format_yuan

        super().__init__("amount", "account_limit_exceeded", f"金额超出账户上限：¥{format_yuan(amount)}，上限¥{format_yuan(MAX_FEN)}",
                         f"the amount ¥{format_yuan(amount)} would take the account past its limit of ¥{format_yuan(MAX_FEN)}")
        self.account_id = account_id
