"""One-code payments end to end over HTTP against `yibao serve`, a SANDBOX institution in the loop.

What is timed: `POST /api/v1/his/payments/onecode` with an Idempotency-Key — authentication, the code
verified and used, a visit registered with 6 fee lines, the settlement priced and held (pending legs,
reserved totals), the cash request recorded, the SANDBOX wxpay (a separate `yibao sandbox` process,
signed RSA requests over loopback) asked for the cash under the holder's password-free agreement,
everything posted — two units of work and one institution call per payment. The sandbox then
notifies the platform (verified, deduplicated, a unit of its own), as a real institution would.

Set up beforehand through the same services (not timed): a hospital, holders with e-cards bound to
the institution (limit 1000.00) and agreements signed, one live code per holder. One JSON line per
run: 1, 8 and 32 concurrent clients, on SQLite and (when YIBAO_BENCH_POSTGRES_URL is set) PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import LINES, CpuMeter, NextRequest, analyze, closed_loop, figures, free_port, open_loop, popen_logged, stop, wait_ready  # noqa: E402  (the same minimal HTTP client and bill as bench/api.py)

from yibao.crypto.pii import Keyring  # noqa: E402
from yibao.domain.identity import make_id_number  # noqa: E402
from yibao.sandbox.channels import pair  # noqa: E402
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import institutions, payment_institutions, pilots
from yibao.services.books import audit
from yibao.services.payments import paycodes  # noqa: E402
from yibao.services.people import bindings, cards, identity
from yibao.services.people import persons as people
from yibao.store import migrate  # noqa: E402
from yibao.store.db import Database  # noqa: E402

RUNS = tuple(int(x) for x in os.environ.get("YIBAO_BENCH_CLIENTS", "1,8,32").split(","))
SECONDS = float(os.environ.get("YIBAO_BENCH_SECONDS", "3"))
# The paced run per database: issue 13's targets (YIBAO_BENCH_PACED_PAYMENTS="sqlite:200,postgresql:150"; empty: none).
PACED = {db: int(rate) for db, _, rate in (item.partition(":") for item in
                                          os.environ.get("YIBAO_BENCH_PACED_PAYMENTS", "sqlite:200,postgresql:150").split(",") if item)}
PI = "wxpay-bench"


def seed(db: Database, keyring: Keyring, holders: int, sandbox_url: str, notify_url: str, key_dir: Path) -> tuple[str, list[str]]:
    audit.use_key(db, keyring)  # the server keys the chain with the same master key
    now = db.clock()
    inst, secret = db.run(lambda c: institutions.admit(c, now, code="HBENCH0002", region="440300", name="基准测试医院", kind="hospital",
                                                       level="level2", actor="bench"))
    db.run(lambda c: pilots.record_signed(c, now, institution_id=inst.id, modes=("onecode", "face", "mobile", "credit"), actor="bench"))
    connector = pair("wxpay", key_dir=key_dir).connector(sandbox_url, notify_url=notify_url)

    def institution(c) -> None:  # noqa: ANN001
        payment_institutions.admit(c, now, pi_id=PI, region="440300", name="微信支付（沙箱）", kind="wallet", admission_ref="bench", actor="bench")
        channel_registry.configure(c, keyring, now, pi_id=PI, actor="bench", **channel_registry.settings_of(connector))
    db.run(institution)
    ids: list[str] = []

    def enrol_batch(c, start: int, end: int) -> None:  # noqa: ANN001
        for i in range(start, end):
            number = make_id_number("440301", date(1960 + i % 40, 1 + i % 12, 1 + i % 28), i % 1000)
            name = f"持码人{i}"
            p = people.enrol(c, keyring, now, region="440300", id_number=number, name=name, insurance_type="employee", tier=1, actor="bench")
            identity.real_name(c, keyring, now, person_id=p.id, name=name, id_number=number, actor="bench")
            identity.enrol_face(c, keyring, now, person_id=p.id, template_id=f"tpl_{p.id}", actor="bench")
            identity.record_real_person(c, keyring, now, person_id=p.id, template_id=f"tpl_{p.id}", match=True, liveness="pass",
                                        similarity=0.97, actor="bench")
            cards.issue_ecard(c, keyring, now, person_id=p.id, actor="bench")
            bindings.bind(c, now, holder_id=p.id, pi_id=PI, password_free_limit=100000, actor="bench")
            ids.append(p.id)

    for start in range(0, holders, 100):
        db.run(lambda c, s=start: enrol_batch(c, s, min(s + 100, holders)))

    async def sign_all() -> None:  # each holder signs once on the sandbox's WeChat page, before any payment (as in the app)
        import re

        from yibao.services import Context
        from yibao.services.payments import agreements

        ctx = Context.for_database(db, keyring)
        gate = asyncio.Semaphore(16)

        async def sign(pid: str, client: httpx.AsyncClient) -> None:
            async with gate:
                started = await agreements.start(ctx, holder_id=pid, pi_id=PI, return_url=None, actor="bench")
                if started["status"] == "active":
                    return
                page = await client.get(started["signing"]["url"])
                action = re.search(r'<form method="post" action="([^"]+)"', page.text)
                assert page.status_code == 200 and action is not None, page.text
                await client.post(str(page.url.join(action.group(1))), data={"decision": "confirm"})
                state = await agreements.refresh(ctx, holder_id=pid, pi_id=PI, actor="bench")
                assert state["status"] == "active", state
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(sign(pid, client) for pid in ids))
    asyncio.run(sign_all())
    return f"{inst.id}.{secret}", ids


def issue_codes(db: Database, keyring: Keyring, ids: list[str]) -> list[str]:
    """One live code per holder, issued just before the runs (codes live 180 s)."""
    codes: list[str] = []
    for start in range(0, len(ids), 200):
        codes += db.run(lambda c, s=start: [paycodes.issue(c, keyring, db.clock(), holder_id=pid, actor="bench").code
                                            for pid in ids[s:s + 200]])
    return codes


def _payment_requests(credential: str, codes: list[str]) -> NextRequest:
    def next_request() -> tuple[str, str, bytes] | None:
        if not codes:
            return None
        body = json.dumps({"code": codes.pop(), "lines": LINES, "terminal_id": "BENCH"}).encode()
        return ("/api/v1/his/payments/onecode",
                f"Authorization: Bearer {credential}\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n", body)
    return next_request


def _completed(status: int, answer: bytes) -> bool:
    return status == 200 and json.loads(answer)["status"] == "completed"


async def run_clients(base: str, credential: str, codes: list[str], clients: int, seconds: float) -> list[float]:
    return await closed_loop(base, _payment_requests(credential, codes), _completed, clients, seconds, "payment")


async def run_paced(base: str, credential: str, codes: list[str], clients: int, rate: float, seconds: float) -> tuple[list[float], float]:
    """Open loop at ``rate`` payments per second (bench/api.py `open_loop`: no coordinated omission)."""
    return await open_loop(base, _payment_requests(credential, codes), _completed, clients, rate, seconds, "payment")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return popen_logged([sys.executable, "-m", "yibao.cli", *args], env)


def bench(db_name: str, url: str, workers: int, tmp: Path) -> None:
    db = Database(url)
    if db.dialect == "postgresql":
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate.upgrade(db)
    key = os.urandom(32)
    keyring = Keyring(key)
    env = {**os.environ, "YIBAO_SECRET_KEY": key.hex(), "YIBAO_DATABASE_URL": url, "YIBAO_RECOVERY_INTERVAL": "0",
           "YIBAO_ADMIN_TOKENS": f"bench:{os.urandom(32).hex()}"}  # production refuses to start without an operator
    port, sandbox_port = free_port(), free_port()
    base, sandbox_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}"
    key_dir = tmp / f"keys-{db_name}"
    sandbox = start(["sandbox", "wxpay", "--port", str(sandbox_port), "--keys", str(key_dir)], env)
    server = None
    try:
        wait_ready(sandbox_url, sandbox, path="/sandbox/info", what="yibao sandbox")
        holders = int(SECONDS * (220 * len(RUNS) + PACED.get(db_name, 0))) + 100 + 100 * max(RUNS) // 4
        credential, ids = seed(db, keyring, holders, sandbox_url, f"{base}/api/v1/channels/{PI}/notify", key_dir)
        server = start(["serve", "--no-demo", "--port", str(port), "--database", url, "--workers", str(workers)], env)
        wait_ready(base, server)
        # The holders' signings were notified while the platform was not yet up: the sandbox would resend them (15 s,
        # 15 s, 30 s …) into the measured runs — thousands of agreement notifications counted as payments' CPU. Sent now.
        counts = httpx.post(f"{sandbox_url}/sandbox/notifications/flush", timeout=600).json()
        assert not counts.get("pending"), counts
        codes = issue_codes(db, keyring, ids)
        analyze(db)
        db.dispose()
        asyncio.run(run_clients(base, credential, codes, max(RUNS), 1.0))  # warm up: every pooled connection opened (bench/api.py)
        database = url.rsplit("/", 1)[-1] if db_name == "postgresql" else None
        # The platform's CPU per payment (its notification from the sandbox included), the sandbox's and PostgreSQL's beside it.
        platform_cpu, sandbox_cpu = CpuMeter(server.pid, database=database), CpuMeter(sandbox.pid)

        def report(lat: list[float], elapsed: float, **mode: object) -> None:
            sandbox_ms = sandbox_cpu.per(len(lat), "payment")["platform_cpu_ms_per_payment"]
            print(json.dumps({"bench": "payments", "db": db_name, "workers": workers, **mode, **figures(lat, elapsed, unit="payments"),
                              **platform_cpu.per(len(lat), "payment"), "sandbox_cpu_ms_per_payment": sandbox_ms}), flush=True)
            if not codes:
                print(json.dumps({"bench": "payments", "warning": "ran out of codes: raise the holder count"}), flush=True)

        for clients in RUNS:
            if os.environ.get("YIBAO_BENCH_MARK"):  # a file touched as each measured run starts (to attach a profiler then)
                Path(os.environ["YIBAO_BENCH_MARK"]).touch()
            platform_cpu.start(), sandbox_cpu.start()
            t0 = time.perf_counter()
            lat = asyncio.run(run_clients(base, credential, codes, clients, SECONDS))
            report(lat, time.perf_counter() - t0, mode="closed", clients=clients)
        rate = PACED.get(db_name)
        if rate:
            platform_cpu.start(), sandbox_cpu.start()
            lat, elapsed = asyncio.run(run_paced(base, credential, codes, 32, rate, SECONDS))
            report(lat, elapsed, mode="paced", clients=32, offered_per_s=rate)
    finally:
        if server is not None:
            stop(server)
        stop(sandbox)


def main() -> None:
    workers = int(os.environ.get("YIBAO_BENCH_WORKERS", "2"))
    dbs = os.environ.get("YIBAO_BENCH_DBS", "sqlite,postgresql").split(",")  # one of them, to study a change
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in dbs:
            bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", workers, Path(tmp))
        pg = os.environ.get("YIBAO_BENCH_POSTGRES_URL")
        if "postgresql" not in dbs:
            pass
        elif pg:
            bench("postgresql", pg, workers, Path(tmp))
        else:
            print(json.dumps({"bench": "payments", "db": "postgresql", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)


if __name__ == "__main__":
    main()
