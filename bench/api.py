"""End-to-end settlements over HTTP against `yibao serve`: throughput and latency, one JSON line per run.

Target (issue "Platform core"): at least 500 settlements/s on SQLite on the 2-core machine, p99 at
most 50 ms at 32 concurrent clients.

What is timed: `POST /api/v1/his/visits/{id}/settle` with an Idempotency-Key and personal-account
use — authentication, idempotency record, the patient's presence used up, the engine, ledger legs,
accumulators, the audit chain, one transaction — for visits registered and filled with 6 fee lines, and
the patient's presence recorded, beforehand through the same services (not timed). Patients are spread
over many people, as at a real hospital. The server is a real `yibao serve` process on loopback; the
clients are asyncio tasks in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx

from yibao.crypto.pii import Keyring
from yibao.domain.identity import make_id_number
from yibao.sandbox import catalogue as demo_catalogue
from yibao.services.agency import institutions, pilots
from yibao.services.books import audit, contributions
from yibao.services.care import presence, visits
from yibao.services.people import account_credits
from yibao.services.people import persons as people
from yibao.store import migrate
from yibao.store.db import Database

LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "30.00", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "A310", "name": "血常规", "unit_price": "25.00", "quantity": "1"},
    {"feedetl_sn": "3", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True,
     "prescriber": "D0042"},
    {"feedetl_sn": "4", "medins_list_codg": "XB21", "name": "布洛芬缓释胶囊", "unit_price": "18.60", "quantity": "1"},
    {"feedetl_sn": "5", "medins_list_codg": "C900", "name": "保健品", "unit_price": "39.90", "quantity": "1"},
    {"feedetl_sn": "6", "medins_list_codg": "A201", "name": "注射费", "unit_price": "8.00", "quantity": "3"},
]
RUNS = tuple(int(x) for x in os.environ.get("YIBAO_BENCH_CLIENTS", "1,8,32").split(","))
# The paced run: clients send on a fixed schedule adding up to this many settlements per second.
PACED = tuple(int(x) for x in os.environ.get("YIBAO_BENCH_PACED", "500").split(",") if x)
PACED_CLIENTS = 32
SECONDS = float(os.environ.get("YIBAO_BENCH_SECONDS", "4"))
PEOPLE = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(db: Database, keyring: Keyring, visits_needed: int) -> tuple[str, list[str]]:
    audit.use_key(db, keyring)  # the server keys the chain with the same master key
    now = db.clock()
    inst, secret = db.run(lambda c: institutions.admit(c, now, code="HBENCH0001", region="440300", name="基准测试医院", kind="hospital",
                                                       level="level2", actor="bench"))
    db.run(lambda c: pilots.record_signed(c, now, institution_id=inst.id, modes=("onecode", "face", "mobile", "credit"), actor="bench"))
    # The DEMO catalogue and the demo's item mappings: the platform decides each line's class from them (at upload, untimed).
    db.run(lambda c: demo_catalogue.load(c, now, [inst], actor="bench"))
    # Credits draw from contributions collected: collect the opening balances first.
    db.run(lambda c: contributions.record_collection(c, now, region="440300", amount=PEOPLE * 5_000_00, reference="bench:opening",
                                                     actor="bench"))
    persons = []

    def enrol_batch(c, start: int, end: int) -> None:  # noqa: ANN001
        for i in range(start, end):
            p = people.enrol(c, keyring, now, region="440300", id_number=make_id_number("440301", date(1970 + i % 30, 1 + i % 12, 1 + i % 28), i % 1000),
                             name=f"患者{i}", insurance_type="employee", tier=1, actor="bench")
            account_credits.credit_account(c, now, person_id=p.id, amount=5_000_00, client_id=f"bench:{p.id}", actor="bench")
            persons.append(p.id)

    for start in range(0, PEOPLE, 100):
        db.run(lambda c, s=start: enrol_batch(c, s, min(s + 100, PEOPLE)))
    ids: list[str] = []

    def open_batch(c, n: int) -> None:  # noqa: ANN001
        for i in range(n):
            person = persons[(len(ids)) % PEOPLE]
            v = visits.open_visit(c, now, institution=inst, person_id=person, kind="outpatient")
            visits.upload_lines(c, now, institution=inst, visit_id=v.id, items=LINES)
            # The patient presented a credential for the visit (the card with its PIN, say), as the account's use requires.
            presence.record(c, now, kind="card_pin", credential_id=f"bench:{v.id}", institution=inst, person_id=person, owner_id=person,
                            ttl=timedelta(hours=2), visit_id=v.id)
            ids.append(v.id)

    while len(ids) < visits_needed:
        db.run(lambda c: open_batch(c, min(500, visits_needed - len(ids))))
    return f"{inst.id}.{secret}", ids


def popen_logged(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child process whose log (stderr: one JSON line per request) goes to an unnamed temporary file. A pipe nobody
    reads fills after 64 KiB and then blocks the server in the middle of a request: the run stalls."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def log_tail(proc: subprocess.Popen, size: int = 2000) -> str:
    log = getattr(proc, "log", None)
    if log is None:
        return ""
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode(errors="replace")


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60, *, path: str = "/healthz", what: str = "yibao serve") -> None:
    """Wait until ``proc`` answers 200 at ``base + path`` (or exits, or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}: {log_tail(proc)}")
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, headers: str, body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection. A deliberately minimal client: with httpx the
    load generator, sharing the two cores, used more CPU than the server it was measuring."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\n{headers}Content-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


# One request of a load run: (path, extra header lines, body), or None when nothing is left to send.
NextRequest = Callable[[], "tuple[str, str, bytes] | None"]
# Whether an answer (status, body) is what the run expects.
AnswerOk = Callable[[int, bytes], bool]


async def closed_loop(base: str, next_request: NextRequest, ok: AnswerOk, clients: int, seconds: float, what: str) -> list[float]:
    """Closed loop: ``clients`` connections, each sending its next request when the last is answered (capacity)."""
    return (await _drive(base, next_request, ok, clients, None, seconds, what))[0]


async def open_loop(base: str, next_request: NextRequest, ok: AnswerOk, clients: int, rate: float, seconds: float,
                    what: str) -> tuple[list[float], float]:
    """Open loop: each client sends on its own fixed schedule (together ``rate`` per second) and a
    latency counts from the scheduled send time, so a server that falls behind is charged for the
    queue it causes (no coordinated omission). Closed-loop runs measure capacity: there ``clients``
    requests are always in flight, so p50 is ``clients / throughput`` by Little's law."""
    return await _drive(base, next_request, ok, clients, rate, seconds, what)


async def _drive(base: str, next_request: NextRequest, ok: AnswerOk, clients: int, rate: float | None, seconds: float,
                 what: str) -> tuple[list[float], float]:
    latencies: list[float] = []
    host, port = base.split("//")[1].split(":")
    loop = asyncio.get_running_loop()
    interval = clients / rate if rate else 0.0
    start = loop.time() + (0.05 if rate else 0.0)
    stop = start + seconds
    errors = 0

    async def worker(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        due = start + i * interval / clients
        try:
            while (due if rate else loop.time()) < stop:
                if rate:
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                request = next_request()
                if request is None:
                    break
                path, headers, body = request
                sent = due if rate else loop.time()
                status, answer = await _post(reader, writer, path, headers, body)
                latencies.append(loop.time() - sent)
                if not ok(status, answer):
                    errors += 1
                    if errors <= 3:
                        print(f"{what} {path}: {status} {answer[:300]!r}", file=sys.stderr)
                due += interval
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(clients)))
    if errors:
        raise SystemExit(f"{errors} {what} requests failed")
    return latencies, loop.time() - start


def _settle_requests(credential: str, pending: list[str]) -> NextRequest:
    body = json.dumps({"account": {"use": True}}).encode()

    def next_request() -> tuple[str, str, bytes] | None:
        if not pending:
            return None
        visit_id = pending.pop()
        return (f"/api/v1/his/visits/{visit_id}/settle",
                f"Authorization: Bearer {credential}\r\nIdempotency-Key: bench-{visit_id}\r\n", body)
    return next_request


def _settled(status: int, answer: bytes) -> bool:
    return status == 200


async def run_clients(base: str, credential: str, pending: list[str], clients: int, seconds: float) -> list[float]:
    return await closed_loop(base, _settle_requests(credential, pending), _settled, clients, seconds, "settle")


async def run_paced(base: str, credential: str, pending: list[str], clients: int, rate: float, seconds: float) -> tuple[list[float], float]:
    return await open_loop(base, _settle_requests(credential, pending), _settled, clients, rate, seconds, "settle")


def figures(lat: list[float], elapsed: float, *, unit: str = "settlements") -> dict[str, float]:
    """Count, rate and p50/p99 in ms of one run's latencies (seconds)."""
    lat.sort()
    return {unit: len(lat), "per_s": round(len(lat) / elapsed), "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1)}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included), from /proc; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15 of stat


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process this user can see."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    head, tail = f.read().rsplit(b")", 1)
                out.append((int(entry), int(tail.split()[1]), head.split(b"(", 1)[1].decode(errors="replace")))
            except (OSError, IndexError, ValueError):
                pass
    return out


class CpuMeter:
    """CPU seconds spent by the serving processes (``roots`` and their descendants: uvicorn's workers, a sandbox) and,
    separately, by PostgreSQL's processes serving ``database`` (a backend's title names its database), between `start`
    and `per` — a figure per operation that a busy neighbour on the machine inflates less than a rate."""

    def __init__(self, *roots: int, database: str | None = None) -> None:
        self.roots = roots
        self.database = f" {database} ".encode() if database else None
        self._start: tuple[float, float] = (0.0, 0.0)

    def _serves_database(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return self.database is not None and self.database in f.read()
        except OSError:
            return False

    def _now(self) -> tuple[float, float]:
        procs = _processes()
        children: dict[int, list[int]] = {}
        for pid, ppid, _ in procs:
            children.setdefault(ppid, []).append(pid)
        tree, todo = set(), list(self.roots)
        while todo:
            pid = todo.pop()
            if pid not in tree:
                tree.add(pid)
                todo.extend(children.get(pid, ()))
        database = sum(_cpu_of(pid) for pid, _, name in procs if name == "postgres" and self._serves_database(pid))
        return sum(_cpu_of(pid) for pid in tree), database

    def start(self) -> None:
        self._start = self._now()

    def per(self, count: int, unit: str) -> dict[str, float]:
        """CPU ms per ``unit`` since `start`: the platform's, and PostgreSQL's when it did any work."""
        platform, database = (b - a for a, b in zip(self._start, self._now()))
        figures = {f"platform_cpu_ms_per_{unit}": round(platform * 1000 / max(count, 1), 2)}
        if database > 0:
            figures[f"postgres_cpu_ms_per_{unit}"] = round(database * 1000 / max(count, 1), 2)
        return figures


class WaitSampler:
    """PostgreSQL: what the bench database's busy sessions are doing, sampled every 20 ms from pg_stat_activity while a
    run lasts (a wait event — a lock, a WAL flush — or on the CPU, with the statement): where the time goes in the
    database, printed beside the figures."""

    def __init__(self, url: str) -> None:
        self.url, self.counts, self._stop = url, {}, threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "WaitSampler":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _sample(self) -> None:
        import psycopg

        query = ("SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
                 "FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()")
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                for (what,) in conn.execute(query):
                    self.counts[what] = self.counts.get(what, 0) + 1

    def top(self, n: int = 8) -> dict[str, float]:
        """The ``n`` commonest states, each as its share of every busy session sampled."""
        total = sum(self.counts.values()) or 1
        return {k: round(v / total, 3) for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]}


def fresh_database(url: str) -> Database:
    """The bench's database, migrated from nothing (PostgreSQL: every table dropped first)."""
    db = Database(url)
    if db.dialect == "postgresql":
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate.upgrade(db)
    return db


def analyze(db: Database) -> None:
    """PostgreSQL: the tables just filled vacuumed and their statistics taken, as autovacuum keeps a running database
    (without statistics the planner guesses from empty tables; without the vacuum, autovacuum vacuums the seed's
    inserts during the timed runs and its CPU is counted as the settlements')."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # VACUUM runs outside a transaction
            conn.exec_driver_sql("VACUUM ANALYZE")


def serve(url: str, key: bytes, workers: int, **env: str) -> tuple[subprocess.Popen, str]:
    """`yibao serve` in production mode on a free port (a fresh operator token: production refuses to start without
    one), ready; its process and base URL."""
    port = free_port()
    environ = {**os.environ, "YIBAO_SECRET_KEY": key.hex(), "YIBAO_DATABASE_URL": url, "YIBAO_ADMIN_TOKENS": f"bench:{os.urandom(32).hex()}",
               **env}
    proc = popen_logged([sys.executable, "-m", "yibao.cli", "serve", "--no-demo", "--port", str(port), "--database", url,
                         "--workers", str(workers)], environ)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
    except BaseException:
        stop(proc)
        raise
    return proc, base


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench(db_name: str, url: str, workers: int) -> None:
    db = fresh_database(url)
    key = os.urandom(32)  # the server must decrypt what the seed encrypted
    credential, ids = seed(db, Keyring(key), visits_needed=int(SECONDS * (1500 * len(RUNS) + sum(PACED))) + 2000)
    analyze(db)
    db.dispose()
    proc, base = serve(url, key, workers)
    cpu = CpuMeter(proc.pid, database=url.rsplit("/", 1)[-1] if db_name == "postgresql" else None)
    try:
        # Warm up with as many clients as the largest run: every pooled connection opened and its statements prepared
        # first (a fresh PostgreSQL backend costs tens of ms of CPU; counted in a short run it swamped the figure).
        asyncio.run(run_clients(base, credential, ids, max(RUNS), 1.0))
        for clients in RUNS:
            cpu.start()
            t0 = time.perf_counter()
            with WaitSampler(url) if db_name == "postgresql" and clients == max(RUNS) else contextlib.nullcontext() as waits:
                lat = asyncio.run(run_clients(base, credential, ids, clients, SECONDS))
            elapsed = time.perf_counter() - t0
            print(json.dumps({"bench": "api", "db": db_name, "workers": workers, "mode": "closed", "clients": clients,
                              **figures(lat, elapsed), **cpu.per(len(lat), "settlement")}), flush=True)
            if waits is not None:
                print(json.dumps({"bench": "api", "db": db_name, "clients": clients, "postgres_sessions_were": waits.top()},
                                 ensure_ascii=False), flush=True)
        for rate in PACED:
            cpu.start()
            lat, elapsed = asyncio.run(run_paced(base, credential, ids, PACED_CLIENTS, rate, SECONDS))
            print(json.dumps({"bench": "api", "db": db_name, "workers": workers, "mode": "paced", "clients": PACED_CLIENTS,
                              "offered_per_s": rate, **figures(lat, elapsed), **cpu.per(len(lat), "settlement")}), flush=True)
    finally:
        stop(proc)


def main() -> None:
    workers = int(os.environ.get("YIBAO_BENCH_WORKERS", "2"))
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", workers)
    pg = os.environ.get("YIBAO_BENCH_POSTGRES_URL") or os.environ.get("YIBAO_TEST_POSTGRES_URL")
    if pg:
        bench("postgresql", pg, workers)
    else:
        print(json.dumps({"bench": "api", "db": "postgresql", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)


if __name__ == "__main__":
    main()
