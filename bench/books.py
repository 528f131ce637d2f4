"""Issue 15's "Must show": a month's clearing over 1,000,000 settlements, and a day's statement of 1,000,000 rows
reconciled against the ledger — one JSON line per database for each (`python bench/books.py clearing|reconciliation`
runs one of the two; no argument: both).

**Clearing.**

Set up with bulk SQL (not timed, not through the API): one hospital, one insured person, YIBAO_BENCH_SETTLEMENTS
(default 1,000,000) outpatient visits and settlements spread over November 2026, their ledger legs — the fund's for
every settlement, the personal account's for every second one — and the cancel legs of every hundredth; plus 1,000
settlements of December that must not count.

What is timed, as the agency runs it (services/clearing):
- `review` (the operator's view, not part of the job): the application beside the platform's figures — fund and account
  paid, net of cancels, read from the receivable's transfers of the month, and the month's standing settlements;
- `approve`: the figures computed and frozen, with the deposit and the payable (the heavy step);
- `pay`: the payment instruction to the SANDBOX bank (a real signed HTTP service on loopback, one query + one POST + one
  query), then the ledger legs (receivable → payout, receivable → deposit) and status 50.
`clearing_s` = approve + pay: the month's clearing of the institution. The figures are checked against what was
inserted, to the fen. SQLite always; PostgreSQL when YIBAO_BENCH_POSTGRES_URL
is set (in a database of its own, `yibao_bench_books`, made and dropped on that server).

**Reconciliation.** Set up with bulk SQL (not timed, not through the API): YIBAO_BENCH_STATEMENT_ROWS (default
1,000,000) rows' worth of one Beijing day at the SANDBOX WeChat Pay — 99 % payment orders completed that day with
their posted `{setl_id}:cash` legs, and a partial cash refund (with its `:cash:refund` leg) of every 99th order —
and the institution's trade bill for the day in its real format (the sandbox's renderer, gzip-compressed, its SHA1),
with injected differences: 3 amounts altered, 2 payments left out, 2 payments the platform never made, 1 listed twice,
and 2 orders the platform still holds in doubt. What is timed: `parse` (the connector's `check_bill` +
`parse_statement`: decompress, hash, parse the file), then `services/reconciliation/runs.record` — the unit
`reconcile` runs once the connector has the statement — with its phases: `load` (the platform's legs), `match`,
`write` (the run, its differences, the pool). The differences found are checked against those injected, exactly.
`total_s` = parse + record (wall clock); `cpu_s` = the process's CPU seconds over the same span (on a shared machine
the wall clock also counts other jobs' turns). PostgreSQL: in a database of its own, `yibao_bench_recon`.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import text

from yibao.channels.wxpay import transformers as wx
from yibao.crypto.pii import Keyring
from yibao.domain import reconciliation as rc
from yibao.domain.clearing import Month
from yibao.domain.ledger import clearing_payout, fund_account, institution_cash, institution_receivable, patient_cash_source, person_account
from yibao.domain.money import apply_ratio
from yibao.sandbox.channels import pair
from yibao.sandbox.channels.core import RefundRec, TradeRec
from yibao.sandbox.channels.wxpay import render_statement
from yibao.services import Context
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import institutions, payment_institutions
from yibao.services.books import audit, ledger
from yibao.services.clearing import applications, payments
from yibao.services.people import persons as people
from yibao.services.reconciliation import runs
from yibao.store.db import Database

N = int(os.environ.get("YIBAO_BENCH_SETTLEMENTS", "1000000"))
KEY = Keyring(bytes(range(32)))
REGION, HOSPITAL, BANK = "440300", "HBENCH0015", "bank-bench"
FUND, ACCOUNT = 70_00, 10_00  # each settlement's fund share; every second one's account share
NOVEMBER = Month(2026, 11)
BENCH_DB = "yibao_bench_books"
ROWS = int(os.environ.get("YIBAO_BENCH_STATEMENT_ROWS", "1000000"))
PI = "wxpay-bench"
DAY = date(2026, 11, 20)
START = rc.day_bounds(DAY)[0]


def _serve(app) -> tuple[str, object]:  # noqa: ANN001
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def _series(dialect: str, n: int, offset: int = 0) -> str:
    """Rows i = offset+1 … offset+n, generated by the database."""
    if dialect == "postgresql":
        return f"generate_series({offset + 1}, {offset + n}) AS g(i)"
    return f"(WITH RECURSIVE s(i) AS (SELECT {offset + 1} UNION ALL SELECT i + 1 FROM s WHERE i < {offset + n}) SELECT i FROM s) AS g"


def _at(dialect: str, month: int) -> str:
    """A created_at spread over the month's days (UTC, as the platform stores it)."""
    day = "(1 + (g.i % 28))"
    if dialect == "postgresql":
        return f"make_timestamptz(2026, {month}, {day}, 3, 0, 0, 'UTC')"
    return f"printf('2026-%02d-%02d 03:00:00.000000', {month}, {day})"


def bulk(db: Database, person: str, n: int, *, month: int, offset: int) -> None:
    d = db.engine.dialect.name
    at, series = _at(d, month), _series(d, n, offset)
    cat = "||"
    receivable, fund, acct = institution_receivable(HOSPITAL), fund_account(REGION, "pool"), person_account(person)
    with db.engine.begin() as c:
        c.execute(text(f"""INSERT INTO visits (id, region, insured_region, person_id, institution_id, kind, status, visit_date, admission_number,
                           updated_at, created_at)
                           SELECT 'V' {cat} g.i, '{REGION}', '{REGION}', '{person}', '{HOSPITAL}', 'outpatient', 'settled', '2026-{month:02d}-01', 1,
                           {at}, {at} FROM {series}"""))
        c.execute(text(f"""INSERT INTO settlements (id, region, insured_region, visit_id, person_id, institution_id, msgid, status, year, total,
                           fund_total, pool_fund, serious_illness, large_amount, other, assistance, account_pay, account_id, cash_pay, policy_version,
                           accumulator_delta, document, created_at)
                           SELECT 'S' {cat} g.i, '{REGION}', '{REGION}', 'V' {cat} g.i, '{person}', '{HOSPITAL}', 'M' {cat} g.i,
                           CASE WHEN g.i % 100 = 0 THEN 'cancelled' ELSE 'settled' END, 2026, 10000, {FUND}, {FUND}, 0, 0, 0, 0,
                           CASE WHEN g.i % 2 = 0 THEN {ACCOUNT} ELSE 0 END, '{acct}', 2000, 'bench', '{{}}', '{{}}', {at} FROM {series}"""))
        legs = [(f"'{fund}'", f"'{receivable}'", FUND, "pool", "settlement", "1 = 1"),
                (f"'{acct}'", f"'{receivable}'", ACCOUNT, "account", "settlement", "g.i % 2 = 0"),
                (f"'{receivable}'", f"'{fund}'", FUND, "pool:cancel", "cancel", "g.i % 100 = 0"),
                (f"'{receivable}'", f"'{acct}'", ACCOUNT, "account:cancel", "cancel", "g.i % 100 = 0")]
        for debit, credit, amount, suffix, code, where in legs:
            c.execute(text(f"""INSERT INTO transfers (client_id, region, debit_account_id, credit_account_id, amount, kind, state, code, ref, created_at)
                               SELECT 'S' {cat} g.i {cat} ':' {cat} '{suffix}', '{REGION}', {debit}, {credit}, {amount}, 'single', 'posted', '{code}',
                               'S' {cat} g.i, {at} FROM {series} WHERE {where}"""))


def one(db: Database, label: str) -> dict:
    audit.use_key(db, KEY)
    now = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
    db.clock = lambda: now
    inst, _ = db.run(lambda c: institutions.admit(c, now, code=HOSPITAL, region=REGION, name="清算基准医院", kind="hospital", level="level3",
                                                  actor="bench"))
    person = db.run(lambda c: people.enrol(c, KEY, now, region=REGION, id_number="440301196001010019", name="基准", insurance_type="employee",
                                           employment_status="employed", tier=1, actor="bench")).id
    db.run(lambda c: [ledger.ensure_account(c, fund_account(REGION, layer), REGION, "fund", now) for layer in ("pool",)])
    db.run(lambda c: ledger.ensure_account(c, person_account(person), REGION, "person", now, owner_id=person, no_overdraft=True))
    sandbox = pair("bank", seed=15)
    url, server = _serve(sandbox.app)

    def bank(c) -> None:  # noqa: ANN001
        payment_institutions.admit(c, now, pi_id=BANK, region=REGION, name="清算银行（沙箱）", kind="bank", admission_ref="bench", actor="bench")
        channel_registry.configure(c, KEY, now, pi_id=BANK, actor="bench", **channel_registry.settings_of(sandbox.connector(url)))
    db.run(bank)
    db.run(lambda c: applications.set_payee(c, now, institution_id=HOSPITAL, account_no="6222020000123456782", account_name="清算基准医院",
                                           actor="bench"))
    t0 = time.perf_counter()
    bulk(db, person, N, month=11, offset=0)
    bulk(db, person, 1000, month=12, offset=N)  # December's: not November's
    with db.engine.begin() as c:
        c.execute(text("ANALYZE"))  # fresh statistics, as a database in service has
    setup_s = time.perf_counter() - t0
    cancelled = N // 100
    fund = (N - cancelled) * FUND
    account = (N // 2 - cancelled) * ACCOUNT  # every hundredth is even: all cancelled ones had an account leg
    app = db.run(lambda c: applications.apply(c, now, institution=inst, clr_type="11", clr_way="1", setlym=NOVEMBER.setlym, psntime=N - cancelled,
                                              medfee_sumamt=0, med_sumfee=0, fund_appy_sum=fund, cash_payamt=0, acct_pay=account,
                                              begndate=NOVEMBER.first_day, enddate=NOVEMBER.last_day, actor="bench"))["clr_appy_evt_id"]
    t0 = time.perf_counter()
    review = db.run(lambda c: applications.review(c, app), write=False)
    review_s = time.perf_counter() - t0
    assert review["figures"]["fund_appy_sum"]["difference"] == "0.00" and review["figures"]["acct_pay"]["difference"] == "0.00", review
    assert review["figures"]["psntime"]["difference"] == 0, review["figures"]["psntime"]
    t0 = time.perf_counter()
    db.run(lambda c: applications.approve(c, now, app_id=app, actor="bench"))
    approve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outcome = asyncio.run(payments.pay(Context.for_database(db, KEY), app, actor="bench"))
    pay_s = time.perf_counter() - t0
    deposit = apply_ratio(fund, 50_000)
    assert outcome.state == "cleared" and outcome.payable == fund + account - deposit, outcome
    assert db.run(lambda c: ledger.balance(c, clearing_payout(REGION)), write=False) == outcome.payable
    server.should_exit = True  # type: ignore[attr-defined]
    return {"bench": "books.clearing", "db": label, "settlements": N, "setup_s": round(setup_s, 1), "review_s": round(review_s, 2),
            "approve_s": round(approve_s, 2), "pay_s": round(pay_s, 2), "clearing_s": round(approve_s + pay_s, 2),
            "paid": outcome.payable, "deposit": deposit}


# ---- reconciliation ----------------------------------------------------------------------------------

def _orders(rows: int) -> int:
    """Orders such that orders + their refunds (one of every 99th) make ``rows`` statement rows."""
    return rows * 99 // 100


def _injected(t: int) -> dict[str, list[int]]:
    """Which orders carry which difference (order numbers 1 … t; none of them a refunded one: i % 99 != 0)."""
    pick = lambda *at: [max(1, int(t * f)) + k for f, k in at]  # noqa: E731
    return {"amount": pick((0, 7), (0.5, 7), (0.9, 7)), "dropped": pick((0, 11), (0.5, 11)), "doubled": pick((0, 13),),
            "in_doubt": pick((0, 17), (0.3, 17))}


def _cash(i: int) -> int:
    return 1000 + (i % 500) * 7


def _paid_at(i: int, t: int) -> datetime:
    """Spread over the Beijing day, clear of the cut-off minutes before midnight (nothing waits in the pool)."""
    return START + timedelta(seconds=1 + (i * 85000) // t)


def recon_bulk(db: Database, person: str, t: int, in_doubt: list[int]) -> None:
    d = db.engine.dialect.name
    series = _series(d, t)
    start = START
    if d == "postgresql":
        num = lambda prefix, width: f"'{prefix}' || lpad(g.i::text, {width}, '0')"  # noqa: E731
        at = lambda extra: f"(TIMESTAMPTZ '{start.isoformat()}' + make_interval(secs => 1 + (g.i::bigint * 85000) / {t} + {extra}))"  # noqa: E731
    else:
        num = lambda prefix, width: f"printf('{prefix}%0{width}d', g.i)"  # noqa: E731
        at = lambda extra: f"strftime('%Y-%m-%d %H:%M:%S.000000', '{start:%Y-%m-%d %H:%M:%S}', '+' || (1 + (g.i * 85000) / {t} + {extra}) || ' seconds')"  # noqa: E731
    cash = "(1000 + (g.i % 500) * 7)"
    doubt = ",".join(str(i) for i in in_doubt)
    status = f"CASE WHEN g.i IN ({doubt}) THEN 'cash_unknown' WHEN g.i % 99 = 0 THEN 'partially_refunded' ELSE 'completed' END"
    source, till = patient_cash_source(REGION), institution_cash(HOSPITAL)
    with db.engine.begin() as c:
        c.execute(text(f"""INSERT INTO visits (id, region, insured_region, person_id, institution_id, kind, status, visit_date, admission_number,
                           updated_at, created_at) VALUES ('VRECON', '{REGION}', '{REGION}', '{person}', '{HOSPITAL}', 'outpatient', 'settled',
                           '{DAY.isoformat()}', 1, '{start:%Y-%m-%d %H:%M:%S}', '{start:%Y-%m-%d %H:%M:%S}')"""))
        c.execute(text(f"""INSERT INTO payment_orders (id, region, institution_id, request_key, request_hash, method, visit_id, person_id, payer_id,
                           setl_id, payment_institution_id, status, total, fund_total, account_pay, cash_pay, trade_no, pin_attempts,
                           completed_at, updated_at, created_at)
                           SELECT {num('BO', 10)}, '{REGION}', '{HOSPITAL}', {num('K', 10)}, 'bench', 'onecode', 'VRECON', '{person}', '{person}',
                           {num('BS', 10)}, '{PI}', {status}, {cash}, 0, 0, {cash}, {num('WX', 12)}, 0,
                           CASE WHEN g.i IN ({doubt}) THEN NULL ELSE {at(0)} END, {at(0)}, {at(0)} FROM {series}"""))
        c.execute(text(f"""INSERT INTO transfers (client_id, region, debit_account_id, credit_account_id, amount, kind, state, code, ref, created_at)
                           SELECT {num('BS', 10)} || '\\:cash', '{REGION}', '{source}', '{till}', {cash}, 'single', 'posted', 'settlement',
                           {num('BS', 10)}, {at(0)} FROM {series} WHERE g.i NOT IN ({doubt})"""))
        c.execute(text(f"""INSERT INTO payment_refunds (id, region, order_id, institution_id, request_key, request_hash, scope, status,
                           insurance_fen, cash_fen, refund_no, completed_at, updated_at, created_at)
                           SELECT {num('BR', 10)}, '{REGION}', {num('BO', 10)}, '{HOSPITAL}', {num('R', 10)}, 'bench', 'cash', 'succeeded',
                           0, 300, {num('WXR', 12)}, {at(60)}, {at(60)}, {at(60)} FROM {series} WHERE g.i % 99 = 0"""))
        c.execute(text(f"""INSERT INTO transfers (client_id, region, debit_account_id, credit_account_id, amount, kind, state, code, ref, created_at)
                           SELECT {num('BS', 10)} || '\\:cash\\:refund', '{REGION}', '{till}', '{source}', 300, 'single', 'posted', 'refund',
                           {num('BS', 10)}, {at(60)} FROM {series} WHERE g.i % 99 = 0"""))
        c.execute(text("ANALYZE"))


def statement_file(t: int, inj: dict[str, list[int]]) -> bytes:
    """The institution's trade bill of the day as the SANDBOX renders it, with the injected differences."""
    cfg = SimpleNamespace(appid="wxbench0000000001", mchid="1900000015")
    amount, dropped, doubled = set(inj["amount"]), set(inj["dropped"]), set(inj["doubled"])
    trades, refunds = [], []
    for i in range(1, t + 1):
        if i in dropped:
            continue
        paid = _paid_at(i, t)
        rec = TradeRec(f"BO{i:010d}", f"WX{i:012d}", _cash(i) + (100 if i in amount else 0), "门诊", "", "succeeded", None, paid, paid)
        trades += [rec, rec] if i in doubled else [rec]
        if i % 99 == 0:
            refunds.append(RefundRec(f"BO{i:010d}", f"BR{i:010d}", f"WXR{i:012d}", f"WX{i:012d}", 300, "succeeded", None,
                                     paid + timedelta(seconds=60)))
    for j in (1, 2):  # paid at the institution, never by the platform
        paid = _paid_at(j * 1000, t)
        trades.append(TradeRec(f"BX{j:010d}", f"WXX{j:011d}", 4321, "门诊", "", "succeeded", None, paid, paid))
    return render_statement(cfg, trades, refunds)  # type: ignore[arg-type]


def recon_one(db: Database, label: str) -> dict:
    audit.use_key(db, KEY)
    now = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), rc.CHINA).astimezone(timezone.utc) + timedelta(hours=9)
    db.clock = lambda: now
    db.run(lambda c: institutions.admit(c, now, code=HOSPITAL, region=REGION, name="对账基准医院", kind="hospital", level="level3",
                                        actor="bench"))
    person = db.run(lambda c: people.enrol(c, KEY, now, region=REGION, id_number="440301196001010019", name="基准", insurance_type="employee",
                                           employment_status="employed", tier=1, actor="bench")).id
    db.run(lambda c: payment_institutions.admit(c, now, pi_id=PI, region=REGION, name="微信支付（沙箱）", kind="wallet",
                                                admission_ref="bench", actor="bench"))
    db.run(lambda c: ledger.ensure_account(c, patient_cash_source(REGION), REGION, "external_cash", now))
    t = _orders(ROWS)
    inj = _injected(t)
    t0 = time.perf_counter()
    recon_bulk(db, person, t, inj["in_doubt"])
    raw = statement_file(t, inj)
    gz, sha1 = gzip.compress(raw, 1), hashlib.sha1(raw).hexdigest()
    setup_s = time.perf_counter() - t0

    load = round(os.getloadavg()[0], 2)  # as bench/limits.py reports the machine: a busy one reads slower
    t0, cpu0 = time.perf_counter(), time.process_time()
    statement = wx.parse_statement("wxpay", wx.check_bill("wxpay", gz, "GZIP", "SHA1", sha1), DAY)
    parse_s = time.perf_counter() - t0
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    result = db.run(lambda c: runs.record(c, now, pi_id=PI, day=DAY, statement=statement, actor="bench", timings=phases))
    record_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0

    found = {(d["class"], d["key"]) for d in result.differences}
    want = ({(rc.AMOUNT_DIFFERS, f"BO{i:010d}") for i in inj["amount"]} | {(rc.MISSING_AT_INSTITUTION, f"BO{i:010d}") for i in inj["dropped"]}
            | {(rc.DUPLICATE, f"BO{i:010d}") for i in inj["doubled"]} | {(rc.STATUS_DIFFERS, f"BO{i:010d}") for i in inj["in_doubt"]}
            | {(rc.MISSING_AT_PLATFORM, f"BX{j:010d}") for j in (1, 2)})
    assert found == want, (found ^ want)
    refunds = t // 99
    rows = len(statement.rows)
    # Every row matched but the differing ones and the duplicate's second copy (the left-out payments have no row).
    assert result.run["matched"] == rows - len(inj["amount"]) - len(inj["in_doubt"]) - 2 - 1, result.run
    return {"bench": "books.reconciliation", "db": label, "statement_rows": rows, "platform_legs": result.run["platform"]["legs"],
            "refunds": refunds, "differences": len(found), "setup_s": round(setup_s, 1), "parse_s": round(parse_s, 2),
            **{f"{k}_s": round(v, 2) for k, v in phases.items()}, "record_s": round(record_s, 2), "total_s": round(parse_s + record_s, 2),
            "cpu_s": round(cpu_s, 2), "cores": os.cpu_count(), "loadavg_1m": load}


@contextmanager
def own_postgres_database(name: str) -> Iterator[Database]:
    """A PostgreSQL database of its own on YIBAO_BENCH_POSTGRES_URL's server, made here and dropped after: a benchmark's
    million rows never meet a test's tables (bench/whatif.py uses it too)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    pg = os.environ["YIBAO_BENCH_POSTGRES_URL"]
    admin = create_engine(make_url(pg).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    db = Database(make_url(pg).set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def main() -> None:
    halves = {"clearing": one, "reconciliation": recon_one}
    chosen = sys.argv[1:] or list(halves)
    for name in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'books.db'}")
            db.create_all()
            print(json.dumps(halves[name](db, "sqlite")), flush=True)
            db.dispose()
        if not os.environ.get("YIBAO_BENCH_POSTGRES_URL"):
            print(json.dumps({"bench": f"books.{name}", "db": "postgresql", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)
            continue
        with own_postgres_database({"clearing": BENCH_DB, "reconciliation": "yibao_bench_recon"}[name]) as db:
            db.create_all()
            print(json.dumps(halves[name](db, "postgresql")), flush=True)


if __name__ == "__main__":
    main()
