"""The double-entry ledger in SQL, with TigerBeetle's semantics.

A transfer moves ``amount`` from a debit account to a credit account, so every transfer's two
legs sum to zero and so does the whole ledger. Transfers are immutable: a correction is a new
transfer. A pending transfer reserves the amount (debits_pending / credits_pending) until it is
posted or voided, or expires at its timeout. ``client_id`` is the caller's identifier: the same
id twice is one transfer. An account flagged ``debits_must_not_exceed_credits`` (a personal
account) is never overdrawn — checked by a conditional UPDATE and by a CHECK constraint.

Every function takes the open connection of the caller's unit of work. Accounts are locked (updated) in
one order, `lock_order`: personal accounts first, then by id. Every transfer written is handed to the audit
trail (`audit.vouch`), which carries it under its MAC; `audit.verify` checks the ledger against it.

**No hot rows.** Only accounts that must never be overdrawn keep running-balance columns
(`domain.ledger.keeps_balance`: personal accounts, credit lines, contributions); their rows are updated and
locked by the units that move them. The others — a region's fund layers, a hospital's receivable and cash,
clearing, the outside world — are never written after they are opened: their four sides are the sums of
their transfers (`sides`), read when asked. A region's settlements therefore take no common lock; what they
share is an INSERT into `transfers`. Such an account has no MAX_FEN guard on its sums (they are computed in
Python integers and PostgreSQL numerics, never a BIGINT column); every transfer's amount still is guarded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from yibao.domain.ledger import AccountLimitExceeded, InsufficientFunds, LedgerError, keeps_balance, lock_order
from yibao.domain.money import MAX_FEN
from yibao.services.books import audit
from yibao.store.sql import Sql
from yibao.store.tables import ledger_accounts as A
from yibao.store.tables import transfers as T
from yibao.store.upsert import insert_ignore

# Hot-path statements (a settlement runs them every time); see yibao.store.sql.
_AVAILABLE = Sql("SELECT credits_posted - debits_posted - debits_pending FROM ledger_accounts WHERE id = :id")
_LOCK = Sql("SELECT id FROM ledger_accounts WHERE id = :id {lock}")
_LOCK_AVAILABLE = Sql("SELECT credits_posted - debits_posted - debits_pending FROM ledger_accounts WHERE id = :id {lock}")
# Every side of an account stays within MAX_FEN (:max): past BIGINT, SQLite silently turns the sum into
# a float and PostgreSQL fails the statement.
_DEBIT_POSTED = Sql("""UPDATE ledger_accounts SET debits_posted = debits_posted + :amount WHERE id = :id
                       AND debits_posted + debits_pending + :amount <= :max
                       AND (NOT debits_must_not_exceed_credits OR debits_posted + debits_pending + :amount <= credits_posted)""")
_DEBIT_PENDING = Sql("""UPDATE ledger_accounts SET debits_pending = debits_pending + :amount WHERE id = :id
                        AND debits_posted + debits_pending + :amount <= :max
                        AND (NOT debits_must_not_exceed_credits OR debits_posted + debits_pending + :amount <= credits_posted)""")
_CREDIT_POSTED = Sql("""UPDATE ledger_accounts SET credits_posted = credits_posted + :amount WHERE id = :id
                        AND credits_posted + credits_pending + :amount <= :max""")
_CREDIT_PENDING = Sql("""UPDATE ledger_accounts SET credits_pending = credits_pending + :amount WHERE id = :id
                         AND credits_posted + credits_pending + :amount <= :max""")
# A derived account's sides: sums over its transfers (the indexes on debit_account_id and credit_account_id).
_SIDES = Sql("""SELECT
    (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit_account_id = :id AND kind = 'pending' AND state = 'pending'),
    (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit_account_id = :id AND kind IN ('single', 'post')),
    (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE credit_account_id = :id AND kind = 'pending' AND state = 'pending'),
    (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE credit_account_id = :id AND kind IN ('single', 'post'))""")
_SIDES_ROW = Sql("SELECT debits_pending, debits_posted, credits_pending, credits_posted FROM ledger_accounts WHERE id = :id")
_EXISTS = Sql("SELECT 1 FROM ledger_accounts WHERE id = :id")
# The payment path's posting (hold_many, resolve_many) as prepared SQL: Core spent ~100 µs building and keying each.
_APPLY = Sql("""UPDATE ledger_accounts SET debits_pending = debits_pending + :debits_pending,
                debits_posted = debits_posted + :debits_posted, credits_pending = credits_pending + :credits_pending,
                credits_posted = credits_posted + :credits_posted WHERE id = :id""")
_INSERT_TRANSFERS = Sql("""INSERT INTO transfers (client_id, region, debit_account_id, credit_account_id, amount, kind, state, pending_id,
                           timeout_at, code, ref, created_at)
                           VALUES (:client_id, :region, :debit_account_id, :credit_account_id, :amount, :kind, :state, :pending_id,
                           :timeout_at, :code, :ref, :created_at)""")
_HELD = Sql("""SELECT id, client_id, region, debit_account_id, credit_account_id, amount, state, code, ref FROM transfers
               WHERE ref = :ref AND code = :code AND kind = 'pending' ORDER BY id {lock}""")
_RESOLVE_HELD = Sql("""UPDATE transfers SET state = :to WHERE ref = :ref AND code = :code AND kind = 'pending' AND state = 'pending'""")
_INSERT_POSTED = Sql("""INSERT INTO transfers (client_id, region, debit_account_id, credit_account_id, amount, kind, state, code, ref, created_at)
                        VALUES (:client_id, :region, :debit, :credit, :amount, 'single', 'posted', :code, :ref, :now)""")


@dataclass(frozen=True)
class Transfer:
    id: int
    client_id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    kind: str
    state: str
    code: str
    ref: str | None
    created_at: datetime
    region: str = ""
    timeout_at: datetime | None = None
    pending_id: int | None = None


def _transfer(row) -> Transfer:  # noqa: ANN001
    return Transfer(row.id, row.client_id, row.debit_account_id, row.credit_account_id, row.amount, row.kind, row.state,
                    row.code, row.ref, row.created_at, row.region, row.timeout_at, row.pending_id)


def ensure_account(conn: Connection, account_id: str, region: str, kind: str, now: datetime, *,
                   owner_id: str | None = None, no_overdraft: bool = False) -> None:
    if no_overdraft != keeps_balance(account_id):
        # The ledger decides by the account's name which accounts keep (and lock) a balance: one that may
        # never be overdrawn must be one of them, and only those.
        raise ValueError(f"{account_id}: no_overdraft={no_overdraft} disagrees with domain.ledger.keeps_balance")
    insert_ignore(conn, A, dict(id=account_id, region=region, kind=kind, owner_id=owner_id, debits_pending=0, debits_posted=0,
                                credits_pending=0, credits_posted=0, debits_must_not_exceed_credits=no_overdraft, created_at=now))


def get_transfer(conn: Connection, client_id: str) -> Transfer | None:
    row = conn.execute(select(T).where(T.c.client_id == client_id)).first()
    return _transfer(row) if row else None


@dataclass(frozen=True)
class Sides:
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


def sides(conn: Connection, account_id: str) -> Sides:
    """An account's four sides: its row for an account that keeps a balance, the sums of its transfers otherwise."""
    row = (_SIDES_ROW if keeps_balance(account_id) else _SIDES)(conn, {"id": account_id}).first()
    return Sides(*(int(v) for v in row)) if row is not None else Sides(0, 0, 0, 0)


def available(conn: Connection, account_id: str) -> int:
    """Credits posted less debits posted and pending: what a credit-normal account can still pay."""
    if not keeps_balance(account_id):
        s = sides(conn, account_id)
        return s.credits_posted - s.debits_posted - s.debits_pending
    row = _AVAILABLE(conn, {"id": account_id}).first()
    return 0 if row is None else int(row[0])


def balance(conn: Connection, account_id: str) -> int:
    s = sides(conn, account_id)
    return s.credits_posted - s.debits_posted


def lock_account(conn: Connection, account_id: str) -> None:
    """Serialise users of one account (PostgreSQL row lock; SQLite writers are already serial)."""
    _LOCK(conn, {"id": account_id}).first()


def lock_available(conn: Connection, account_id: str) -> int:
    """`lock_account` and `available` in one statement, for an account that keeps its balance (a settlement's payer)."""
    assert keeps_balance(account_id)
    row = _LOCK_AVAILABLE(conn, {"id": account_id}).first()
    return 0 if row is None else int(row[0])


def _debit(conn: Connection, account_id: str, amount: int, *, pending: bool) -> None:
    if not keeps_balance(account_id):
        return  # derived from its transfers: nothing to write or lock
    res = (_DEBIT_PENDING if pending else _DEBIT_POSTED)(conn, {"id": account_id, "amount": amount, "max": MAX_FEN})
    if res.rowcount != 1:
        row = conn.execute(select(A.c.debits_posted, A.c.debits_pending).where(A.c.id == account_id)).first()
        if row is None:
            raise LedgerError("debit_account_id", "unknown_account", f"账户不存在：{account_id}", f"no such account: {account_id}")
        if row.debits_posted + row.debits_pending + amount > MAX_FEN:
            raise AccountLimitExceeded(account_id, amount)
        raise InsufficientFunds(account_id, amount, available(conn, account_id))


def _credit(conn: Connection, account_id: str, amount: int, *, pending: bool) -> None:
    if not keeps_balance(account_id):
        return
    res = (_CREDIT_PENDING if pending else _CREDIT_POSTED)(conn, {"id": account_id, "amount": amount, "max": MAX_FEN})
    if res.rowcount != 1:
        if conn.execute(select(A.c.id).where(A.c.id == account_id)).first() is None:
            raise LedgerError("credit_account_id", "unknown_account", f"账户不存在：{account_id}", f"no such account: {account_id}")
        raise AccountLimitExceeded(account_id, amount)


def transfer(conn: Connection, *, client_id: str, debit: str, credit: str, amount: int, code: str, region: str,
             now: datetime, ref: str | None = None, pending: bool = False, timeout: timedelta | None = None) -> Transfer:
    """Create a single-phase (posted) or pending transfer; the same client_id returns the first one."""
    existing = get_transfer(conn, client_id)
    if existing is not None:
        if (existing.debit_account_id, existing.credit_account_id, existing.amount) != (debit, credit, amount):
            raise LedgerError("client_id", "client_id_reused", f"客户端ID {client_id} 已用于另一笔转账",
                              f"client id {client_id} was already used for a different transfer")
        return existing
    if amount <= 0:
        raise LedgerError("amount", "not_positive", "转账金额必须大于0", "a transfer amount must be greater than 0")
    if amount > MAX_FEN:
        raise AccountLimitExceeded(debit, amount)
    if debit == credit:
        raise LedgerError("credit_account_id", "same_account", "借贷账户不能相同", "debit and credit accounts must differ")
    for field, account_id in (("debit_account_id", debit), ("credit_account_id", credit)):
        # A derived account is not updated, so its existence is asked here (the foreign key would also refuse
        # it, but as a fault): a named error for a caller that names an account. The hot paths rely on the key.
        if not keeps_balance(account_id) and _EXISTS(conn, {"id": account_id}).first() is None:
            raise LedgerError(field, "unknown_account", f"账户不存在：{account_id}", f"no such account: {account_id}")
    for account_id in sorted((debit, credit), key=lock_order):
        if account_id == debit:
            _debit(conn, debit, amount, pending=pending)
        else:
            _credit(conn, credit, amount, pending=pending)
    values = dict(client_id=client_id, region=region, debit_account_id=debit, credit_account_id=credit, amount=amount,
                  kind="pending" if pending else "single", state="pending" if pending else "posted",
                  timeout_at=(now + timeout) if (pending and timeout) else None, code=code, ref=ref, created_at=now)
    new_id = conn.execute(T.insert().values(**values)).inserted_primary_key[0]
    audit.vouch(conn, [(client_id, region, debit, credit, amount)], now)
    return Transfer(id=new_id, **{k: values[k] for k in ("client_id", "debit_account_id", "credit_account_id", "amount", "kind",
                                                         "state", "code", "ref", "created_at", "region", "timeout_at")})


def _resolve(conn: Connection, *, client_id: str, pending_client_id: str, now: datetime, post: bool) -> Transfer:
    done = get_transfer(conn, client_id)
    if done is not None:
        return done
    row = conn.execute(select(T).where(T.c.client_id == pending_client_id).with_for_update()).first()
    if row is None or row.kind != "pending":
        raise LedgerError("pending_id", "no_pending_transfer", f"没有待处理的转账 {pending_client_id}", f"no pending transfer {pending_client_id}")
    overdue = row.state == "pending" and row.timeout_at is not None and _aware(row.timeout_at) <= now
    if overdue and post:
        # Refused without writing: a release here would be rolled back with the refusal. The hold is
        # released by expire_pending (or by a void), which commit on their own.
        raise LedgerError("pending_id", "pending_expired", "该转账已超时", "the pending transfer is past its timeout")
    if row.state != "pending":
        raise LedgerError("pending_id", f"pending_{row.state}", f"该转账已{ {'posted': '入账', 'voided': '作废', 'expired': '超时'}[row.state] }",
                          f"the pending transfer is already {row.state}")
    a = row.amount
    if post:
        _apply(conn, {row.debit_account_id: {"debits_pending": -a, "debits_posted": a}, row.credit_account_id: {"credits_pending": -a,
                                                                                                              "credits_posted": a}})
        conn.execute(update(T).where(T.c.id == row.id).values(state="posted"))
    else:
        _release(conn, row, "expired" if overdue else "voided")
    values = dict(client_id=client_id, region=row.region, debit_account_id=row.debit_account_id, credit_account_id=row.credit_account_id,
                  amount=a, kind="post" if post else "void", state="posted", pending_id=row.id, code=row.code, ref=row.ref, created_at=now)
    new_id = conn.execute(T.insert().values(**values)).inserted_primary_key[0]
    audit.vouch(conn, [(client_id, row.region, row.debit_account_id, row.credit_account_id, a)], now)
    return Transfer(id=new_id, client_id=client_id, debit_account_id=row.debit_account_id, credit_account_id=row.credit_account_id,
                    amount=a, kind=values["kind"], state="posted", code=row.code, ref=row.ref, created_at=now, region=row.region,
                    pending_id=row.id)


def _apply(conn: Connection, deltas: dict[str, dict[str, int]]) -> None:
    """Add each account's deltas (column -> amount), the accounts in lock order."""
    for account_id in sorted(deltas, key=lock_order):
        if not keeps_balance(account_id):
            continue
        d = deltas[account_id]
        if any(d.values()):
            _APPLY(conn, {"id": account_id, "debits_pending": d.get("debits_pending", 0), "debits_posted": d.get("debits_posted", 0),
                          "credits_pending": d.get("credits_pending", 0), "credits_posted": d.get("credits_posted", 0)})


def _release(conn: Connection, row, state: str) -> None:  # noqa: ANN001
    a = row.amount
    _apply(conn, {row.debit_account_id: {"debits_pending": -a}, row.credit_account_id: {"credits_pending": -a}})
    conn.execute(update(T).where(T.c.id == row.id).values(state=state))


def _aware(dt: datetime) -> datetime:
    from datetime import timezone

    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC


def post_pending(conn: Connection, *, client_id: str, pending_client_id: str, now: datetime) -> Transfer:
    return _resolve(conn, client_id=client_id, pending_client_id=pending_client_id, now=now, post=True)


def void_pending(conn: Connection, *, client_id: str, pending_client_id: str, now: datetime) -> Transfer:
    return _resolve(conn, client_id=client_id, pending_client_id=pending_client_id, now=now, post=False)


def expire_pending(conn: Connection, now: datetime) -> int:
    """Release every pending transfer past its timeout; returns how many."""
    rows = conn.execute(select(T).where(T.c.state == "pending", T.c.timeout_at.is_not(None), T.c.timeout_at <= now)
                        .order_by(T.c.id).with_for_update()).all()
    deltas: dict[str, dict[str, int]] = defaultdict(lambda: {"debits_pending": 0, "credits_pending": 0})
    for row in rows:  # the balances once per account, in lock order, as every other unit takes them
        deltas[row.debit_account_id]["debits_pending"] -= row.amount
        deltas[row.credit_account_id]["credits_pending"] -= row.amount
    _apply(conn, deltas)
    if rows:
        conn.execute(update(T).where(T.c.id.in_([r.id for r in rows])).values(state="expired"))
    return len(rows)


def history(conn: Connection, account_id: str, *, limit: int = 50, before_id: int | None = None) -> list[tuple[Transfer, int]]:
    """Posted movements of one account, newest first, each with its signed amount (credit +, debit −)."""
    q = select(T).where(or_(T.c.debit_account_id == account_id, T.c.credit_account_id == account_id),
                        T.c.kind.in_(("single", "post")))
    if before_id is not None:
        # Ids are BIGINT: one past the largest is "before every transfer" (binding it would fail the query).
        q = q.where(T.c.id < min(before_id, 2**63 - 1))
    rows = conn.execute(q.order_by(T.c.id.desc()).limit(limit)).all()
    return [(_transfer(r), r.amount if r.credit_account_id == account_id else -r.amount) for r in rows]


@dataclass(frozen=True)
class Statement:
    account_id: str
    year: int
    month: int
    opening: int
    credits: int
    debits: int
    closing: int
    lines: list[tuple[Transfer, int]]


def _posted_sum(conn: Connection, account_id: str, *, side: str, start: datetime | None, end: datetime) -> int:
    col = T.c.credit_account_id if side == "credit" else T.c.debit_account_id
    q = select(func.coalesce(func.sum(T.c.amount), 0)).where(col == account_id, T.c.kind.in_(("single", "post")), T.c.created_at < end)
    if start is not None:
        q = q.where(T.c.created_at >= start)
    return int(conn.execute(q).scalar_one())


def monthly_statement(conn: Connection, account_id: str, year: int, month: int) -> Statement:
    from datetime import timezone

    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    opening = _posted_sum(conn, account_id, side="credit", start=None, end=start) - _posted_sum(conn, account_id, side="debit", start=None, end=start)
    credits = _posted_sum(conn, account_id, side="credit", start=start, end=end)
    debits = _posted_sum(conn, account_id, side="debit", start=start, end=end)
    rows = conn.execute(select(T).where(or_(T.c.debit_account_id == account_id, T.c.credit_account_id == account_id),
                                        T.c.kind.in_(("single", "post")), T.c.created_at >= start, T.c.created_at < end)
                        .order_by(T.c.id)).all()
    lines = [(_transfer(r), r.amount if r.credit_account_id == account_id else -r.amount) for r in rows]
    return Statement(account_id, year, month, opening, credits, debits, opening + credits - debits, lines)


@dataclass(frozen=True)
class Totals:
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def balanced(self) -> bool:
        return self.debits_posted == self.credits_posted and self.debits_pending == self.credits_pending


def totals(conn: Connection, region: str | None = None) -> Totals:
    """Σ over accounts: posted debits equal posted credits (and pending likewise) in a sound ledger.

    The rows of the accounts that keep a balance, plus the transfers of those that derive theirs — so a
    balance row edited (or an update lost) shows as debits ≠ credits, as before derived accounts."""
    q = select(func.coalesce(func.sum(A.c.debits_posted), 0), func.coalesce(func.sum(A.c.credits_posted), 0),
               func.coalesce(func.sum(A.c.debits_pending), 0), func.coalesce(func.sum(A.c.credits_pending), 0))
    if region is not None:
        q = q.where(A.c.region == region)
    kept = [int(v) for v in conn.execute(q.where(A.c.debits_must_not_exceed_credits)).one()]
    derived = [0, 0, 0, 0]
    for index, column, pending in ((0, T.c.debit_account_id, False), (1, T.c.credit_account_id, False),
                                   (2, T.c.debit_account_id, True), (3, T.c.credit_account_id, True)):
        where = (T.c.kind == "pending") & (T.c.state == "pending") if pending else T.c.kind.in_(("single", "post"))
        s = select(func.coalesce(func.sum(T.c.amount), 0)).select_from(T.join(A, A.c.id == column)).where(
            where, ~A.c.debits_must_not_exceed_credits)
        if region is not None:
            s = s.where(A.c.region == region)
        derived[index] = int(conn.execute(s).scalar_one())
    return Totals(*(k + d for k, d in zip(kept, derived)))




@dataclass(frozen=True)
class Leg:
    client_id: str
    debit: str
    credit: str
    amount: int
    region: str


def post_many(conn: Connection, legs: list[Leg], *, code: str, ref: str, now: datetime) -> None:
    """Post several single-phase transfers as one journal entry (all or nothing with the transaction).

    Balances are updated once per account, so a settlement's five or six legs cost a handful of
    statements; a no-overdraft account is still guarded by its conditional UPDATE.
    """
    legs = [leg for leg in legs if leg.amount > 0]
    if not legs:
        return
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    for leg in legs:
        if leg.debit == leg.credit:
            raise LedgerError("credit_account_id", "same_account", "借贷账户不能相同", "debit and credit accounts must differ")
        debits[leg.debit] = debits.get(leg.debit, 0) + leg.amount
        credits[leg.credit] = credits.get(leg.credit, 0) + leg.amount
    # One lock order for every journal entry (`lock_order`), so a settlement and a cancel never deadlock.
    changes = sorted([(a, "debit", n) for a, n in debits.items()] + [(a, "credit", n) for a, n in credits.items()],
                     key=lambda c: (lock_order(c[0]), c[1]))
    for account_id, side, amount in changes:
        (_debit if side == "debit" else _credit)(conn, account_id, amount, pending=False)
    _INSERT_POSTED(conn, [dict(client_id=leg.client_id, region=leg.region, debit=leg.debit, credit=leg.credit, amount=leg.amount,
                               code=code, ref=ref, now=now) for leg in legs])
    audit.vouch(conn, [(leg.client_id, leg.region, leg.debit, leg.credit, leg.amount) for leg in legs], now)


def journal(conn: Connection, ref: str, code: str) -> list[Transfer]:
    return [_transfer(r) for r in conn.execute(select(T).where(T.c.ref == ref, T.c.code == code).order_by(T.c.id)).all()]


def hold_many(conn: Connection, legs: list[Leg], *, code: str, ref: str, now: datetime, timeout: timedelta | None) -> None:
    """Hold several legs as pending transfers, one journal entry: each reserves its amount (debits_pending,
    credits_pending; a personal account's hold counts against what it can pay) until `resolve_many`
    posts or voids them all, or `expire_pending` releases them after ``timeout``."""
    legs = [leg for leg in legs if leg.amount > 0]
    if not legs:
        return
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    for leg in legs:
        if leg.debit == leg.credit:
            raise LedgerError("credit_account_id", "same_account", "借贷账户不能相同", "debit and credit accounts must differ")
        debits[leg.debit] = debits.get(leg.debit, 0) + leg.amount
        credits[leg.credit] = credits.get(leg.credit, 0) + leg.amount
    changes = sorted([(a, "debit", n) for a, n in debits.items()] + [(a, "credit", n) for a, n in credits.items()],
                     key=lambda c: (lock_order(c[0]), c[1]))
    for account_id, side, amount in changes:  # one lock order, as post_many
        (_debit if side == "debit" else _credit)(conn, account_id, amount, pending=True)
    timeout_at = now + timeout if timeout else None
    _INSERT_TRANSFERS(conn, [dict(client_id=leg.client_id, region=leg.region, debit_account_id=leg.debit, credit_account_id=leg.credit,
                                  amount=leg.amount, kind="pending", state="pending", pending_id=None, timeout_at=timeout_at, code=code,
                                  ref=ref, created_at=now) for leg in legs])
    audit.vouch(conn, [(leg.client_id, leg.region, leg.debit, leg.credit, leg.amount) for leg in legs], now)


def resolve_many(conn: Connection, *, ref: str, code: str, now: datetime, post: bool) -> int:
    """Post (or void) every pending transfer of one journal entry; returns how many were resolved.

    Already resolved ones are left as they are (a retry resolves nothing twice). Posting refuses,
    writing nothing, if a hold has expired or been voided: its reservation is gone, so the money it
    held may have moved since. Balances are updated once per account, in lock order.
    """
    rows = list(_HELD(conn, {"ref": ref, "code": code}))
    if post:
        gone = [r for r in rows if r.state in ("voided", "expired")]
        if gone:
            raise LedgerError("pending_id", f"pending_{gone[0].state}", "预留资金已释放，不能入账",
                              f"a held transfer of {ref} is already {gone[0].state}; it cannot be posted")
    todo = [r for r in rows if r.state == "pending"]
    if not todo:
        return 0
    deltas: dict[str, dict[str, int]] = {}
    for r in todo:
        d = deltas.setdefault(r.debit_account_id, {"debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0})
        d["debits_pending"] -= r.amount
        d["debits_posted"] += r.amount if post else 0
        c = deltas.setdefault(r.credit_account_id, {"debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0})
        c["credits_pending"] -= r.amount
        c["credits_posted"] += r.amount if post else 0
    _apply(conn, deltas)
    # The rows read above are locked (PostgreSQL) or the database is (SQLite): the still-pending ones are exactly ``todo``.
    resolved = _RESOLVE_HELD(conn, {"to": "posted" if post else "voided", "ref": ref, "code": code}).rowcount
    if resolved != len(todo):  # never: the rows are locked — but a posting must not move other rows than it counted
        raise RuntimeError(f"resolve_many {ref}/{code}: {resolved} rows resolved, {len(todo)} read")
    kind = "post" if post else "void"
    _INSERT_TRANSFERS(conn, [dict(client_id=f"{r.client_id}:{kind}", region=r.region, debit_account_id=r.debit_account_id,
                                  credit_account_id=r.credit_account_id, amount=r.amount, kind=kind, state="posted", pending_id=r.id,
                                  timeout_at=None, code=r.code, ref=r.ref, created_at=now) for r in todo])
    audit.vouch(conn, [(f"{r.client_id}:{kind}", r.region, r.debit_account_id, r.credit_account_id, int(r.amount)) for r in todo], now)
    return len(todo)


def held_amounts(conn: Connection, ref: str, code: str) -> dict[str, str]:
    """The states of one journal entry's held transfers by client id (for tests and the order view)."""
    rows = conn.execute(select(T.c.client_id, T.c.state).where(T.c.ref == ref, T.c.code == code, T.c.kind == "pending")).all()
    return {r.client_id: r.state for r in rows}
