"""Issue 16's "Must show": the policy what-if over 1,000,000 stored settlements — seconds, and the process's memory at
checkpoints (flat: the history is streamed, never loaded). One JSON line per database; a line per checkpoint on
stderr as it runs.

Set up with bulk SQL (not timed, not through the API): four Shenzhen hospitals (community, level 1, 2, 3),
YIBAO_BENCH_SETTLEMENTS (default 1,000,000) / 10 insured persons — employees of tier 1 and 2, retirees, residents
(some on minimum living allowance), children — and for each settlement its visit (one in ten an inpatient stay) with
two fee lines (a class-A item; a class-B drug above its price cap), spread over 2026 so that each person has ten
settlements in the year; every hundredth settlement is cancelled. The stored fund amounts are placeholders (the
what-if reads them as they are; tests/services/care/test_whatif.py checks the figures on a history settled through
the services).

What is timed: `services/care/whatif.replay` over the whole year under a new Shenzhen 2026 policy (outpatient
ratios up five points, the serious-illness threshold halved) — one read unit streaming the rows, the year replayed
person by person with the engine: in this process, or with YIBAO_BENCH_WHATIF_WORKERS=N in N worker processes while
this one reads. `replay_s` wall clock, `cpu_s` this process's CPU seconds over it (not the workers'); `rss_mb` at each
checkpoint (every 10 % of the settlements) and `peak_rss_mb` (VmHWM) — the set-up's own peak is reset before the
replay where the kernel allows it. SQLite always; PostgreSQL when YIBAO_BENCH_POSTGRES_URL is set (in a database of
its own, `yibao_bench_whatif`, made and dropped on that server).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import yaml
from books import own_postgres_database  # bench/books.py: a database of its own on the benchmark's server
from sqlalchemy import text

from yibao.crypto.pii import Keyring
from yibao.policies.loader import BUILTIN_DIR, load_policy_bytes
from yibao.services.agency import institutions
from yibao.services.books import audit
from yibao.services.care import whatif
from yibao.store.db import Database

N = int(os.environ.get("YIBAO_BENCH_SETTLEMENTS", "1000000"))
PERSONS = max(1, N // 10)
KEY = Keyring(bytes(range(32)))
REGION = "440300"
HOSPITALS = (("HWI0001", "community"), ("HWI0002", "level1"), ("HWI0003", "level2"), ("HWI0004", "level3"))
BENCH_DB = "yibao_bench_whatif"
WORKERS = int(os.environ.get("YIBAO_BENCH_WHATIF_WORKERS", "1"))  # worker processes pricing persons (`yibao whatif --workers`)


def _memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            got[key] = int(value.split()[0]) / 1024
    return round(got["VmRSS"], 1), round(got["VmHWM"], 1)


def _children_rss() -> float:
    """The worker processes' RSS in MB (children listed by /proc; 0 without workers)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            total += int(line.split()[1])
    return round(total / 1024, 1)


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs), so the peak is the replay's, not the set-up's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _series(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS g(i)"
    return f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS g"


def bulk(db: Database) -> None:
    d = db.engine.dialect.name
    pg = d == "postgresql"
    persons, settlements = _series(d, PERSONS), _series(d, N)
    person = f"'{REGION}' || lpad((g.i % {PERSONS})::text, 12, '0')" if pg else f"printf('{REGION}%012d', g.i % {PERSONS})"
    born = "DATE '1950-01-01' + (g.i % 25000)" if pg else "date('1950-01-01', '+' || (g.i % 25000) || ' days')"
    day = f"(g.i::bigint * 364 / {N})" if pg else f"(g.i * 364 / {N})"
    visit_date = f"DATE '2026-01-01' + {day}::int" if pg else f"date('2026-01-01', '+' || {day} || ' days')"
    at = f"(DATE '2026-01-01' + {day}::int)::timestamp AT TIME ZONE 'UTC' + interval '3 hours'" if pg \
        else f"date('2026-01-01', '+' || {day} || ' days') || ' 03:00:00.000000'"
    blob = "'\\x00'::bytea" if pg else "X'00'"
    hospital = "CASE g.i % 4 " + " ".join(f"WHEN {k} THEN '{code}'" for k, (code, _) in enumerate(HOSPITALS)) + " END"
    inpatient = "g.i % 10 = 0"
    with db.engine.begin() as c:
        # Persons: j % 10 — 0–3 employee tier 1, 4 employee tier 2, 5 retiree (tier 1), 6–8 resident, 9 child.
        c.execute(text(f"""INSERT INTO persons (id, region, id_number_enc, id_number_hash, name_enc, birth_date, insurance_type, tier,
                           employment_status, hardship, status, created_at)
                           SELECT {person.replace('g.i % ' + str(PERSONS), 'g.i')}, '{REGION}', {blob}, 'h' || g.i, {blob},
                           {born.replace('g.i % 25000', '(g.i * 7919) % 25000')},
                           CASE WHEN g.i % 10 < 6 THEN 'employee' WHEN g.i % 10 < 9 THEN 'resident' ELSE 'child' END,
                           CASE WHEN g.i % 10 < 4 OR g.i % 10 = 5 THEN 1 WHEN g.i % 10 = 4 THEN 2 END,
                           CASE WHEN g.i % 10 = 5 THEN 'retired' WHEN g.i % 10 < 6 THEN 'employed' ELSE 'none' END,
                           CASE WHEN g.i % 10 BETWEEN 6 AND 8 AND g.i % 97 = 0 THEN 'dibao' END,
                           'active', '2026-01-01 00:00:00' FROM (SELECT i - 1 AS i FROM {persons}) AS g"""))
        c.execute(text(f"""INSERT INTO visits (id, region, insured_region, person_id, institution_id, kind, status, visit_date, admission_number,
                           updated_at, created_at)
                           SELECT 'V' || g.i, '{REGION}', '{REGION}', {person}, {hospital},
                           CASE WHEN {inpatient} THEN 'inpatient' ELSE 'outpatient' END, 'settled', {visit_date}, 1, {at}, {at}
                           FROM {settlements}"""))
        service = "CASE WHEN g.i % 10 = 0 THEN 500000 + (g.i % 50) * 10000 ELSE 5000 + (g.i % 200) * 100 END"
        c.execute(text(f"""INSERT INTO fee_lines (region, visit_id, feedetl_sn, code, name, line_class, unit_price, quantity, price_cap,
                           self_pay_ratio, prescription, status, created_at)
                           SELECT '{REGION}', 'V' || g.i, '1', '001102000010000', '诊查费', 'A', {service}, 10000, NULL, NULL, false, 'active', {at}
                           FROM {settlements}"""))
        c.execute(text(f"""INSERT INTO fee_lines (region, visit_id, feedetl_sn, code, name, line_class, unit_price, quantity, price_cap,
                           self_pay_ratio, prescription, status, created_at)
                           SELECT '{REGION}', 'V' || g.i, '2', 'XJ01DDC078A001010100483', '头孢克肟胶囊', 'B', 1250, 20000, 1000, NULL, true,
                           'active', {at} FROM {settlements}"""))
        c.execute(text(f"""INSERT INTO settlements (id, region, insured_region, visit_id, person_id, institution_id, msgid, status, year, total,
                           fund_total, pool_fund, serious_illness, large_amount, other, assistance, account_pay, account_id, cash_pay, policy_version,
                           accumulator_delta, document, created_at)
                           SELECT 'S' || g.i, '{REGION}', '{REGION}', 'V' || g.i, {person}, {hospital}, 'M' || g.i,
                           CASE WHEN g.i % 100 = 0 THEN 'cancelled' ELSE 'settled' END, 2026, 10000, 7000, 7000, 0, 0, 0, 0, 0, NULL, 3000,
                           '440300-2026.1', '{{}}', '{{}}', {at} FROM {settlements}"""))
        c.execute(text("ANALYZE"))


def new_policy():  # noqa: ANN201
    data = yaml.safe_load((BUILTIN_DIR / f"{REGION}-2026.yaml").read_text(encoding="utf-8"))
    data["revision"] = 9
    for scheme in data["schemes"].values():
        for variant in scheme["outpatient"]:
            variant["ratio"] = {level: f"{min(1.0, float(r) + 0.05):.2f}" for level, r in variant["ratio"].items()}
    data["serious_illness"]["threshold"] = "10000"
    return load_policy_bytes(yaml.safe_dump(data, allow_unicode=True).encode(), "bench-440300-2026.yaml")


def one(db: Database, label: str) -> dict:
    audit.use_key(db, KEY)
    now = datetime(2027, 1, 5, 1, 0, tzinfo=timezone.utc)
    db.clock = lambda: now
    for code, level in HOSPITALS:
        db.run(lambda c, code=code, level=level: institutions.admit(c, now, code=code, region=REGION, name=f"测算基准医院{level}",
                                                                    kind="hospital", level=level, actor="bench"))
    t0 = time.perf_counter()
    bulk(db)
    setup_s = time.perf_counter() - t0
    policy = new_policy()
    reset = _reset_peak()
    checkpoints: list[dict] = []
    step = max(1, N // 10)
    t0, cpu0 = time.perf_counter(), time.process_time()
    mark = {"next": step}

    def progress(done: int, total: int | None) -> None:
        if (done >= mark["next"] or done == total) and not (checkpoints and checkpoints[-1]["settlements"] == done):
            mark["next"] += step
            rss, hwm = _memory()
            point = {"settlements": done, "s": round(time.perf_counter() - t0, 1), "rss_mb": rss, "peak_mb": hwm, "workers_rss_mb": _children_rss()}
            checkpoints.append(point)
            print(json.dumps({"db": label, **point}), file=sys.stderr, flush=True)

    load = round(os.getloadavg()[0], 2)
    report = db.run(lambda c: whatif.replay(c, policy, start=date(2026, 1, 1), end=date(2026, 12, 31), progress=progress, workers=WORKERS),
                    write=False)
    replay_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    standing = N - N // 100
    assert report.repriced + report.failed == standing, (report.repriced, report.failed, standing)
    assert report.not_repriced["cancelled"] == N // 100
    rss, hwm = _memory()
    return {"bench": "whatif", "db": label, "workers": WORKERS, "settlements": N, "fee_lines": 2 * N, "persons": PERSONS, "repriced": report.repriced,
            "failed": report.failed, "setup_s": round(setup_s, 1), "replay_s": round(replay_s, 1), "cpu_s": round(cpu_s, 1),
            "us_per_settlement": round(replay_s * 1e6 / N, 1), "checkpoints": checkpoints, "peak_rss_mb": hwm,
            "peak_reset_before_replay": reset, "fund_change": report.as_dict()["fund_total"], "cores": os.cpu_count(), "loadavg_1m": load}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'whatif.db'}")
        db.create_all()
        print(json.dumps(one(db, "sqlite")), flush=True)
        db.dispose()
    if not os.environ.get("YIBAO_BENCH_POSTGRES_URL"):
        print(json.dumps({"bench": "whatif", "db": "postgresql", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)
        return
    with own_postgres_database(BENCH_DB) as db:
        db.create_all()
        print(json.dumps(one(db, "postgresql")), flush=True)


if __name__ == "__main__":
    main()
