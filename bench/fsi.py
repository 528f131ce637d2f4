"""Settlements through the national interface envelope (2207) beside REST settle, in the same run, against
`yibao serve`: per second and latency, one JSON line per run, beside the machine's limit.

What is timed: for REST, `POST /api/v1/his/visits/{id}/settle` (bench/api.py); for the envelope, `POST
/fsi/api/rsfComIfsService/callService` with infno 2207 — the gateway headers checked (signature, time window,
the nonce claimed in its own unit), the envelope read, the msgid's idempotency record, the sign-in, the same
settlement — in the plain mode and in the encrypted mode (input and output SM4, `cainfo` SM3withSM2 both ways:
the institution's signature verified, the platform's made). Requests are built before each run (a HIS signs
its own), so the client's SM2 signing is not charged to the server. The machine's limit: `GET /healthz` on the
same server with the same client — what a request costs that does nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import LINES, _post, figures, fresh_database, serve, stop  # noqa: E402  (the same minimal HTTP client and bill as bench/api.py)

from yibao.crypto import gm  # noqa: E402
from yibao.crypto.pii import Keyring  # noqa: E402
from yibao.domain.identity import make_id_number  # noqa: E402
from yibao.formats import fsi as wire  # noqa: E402
from yibao.sandbox import catalogue as demo_catalogue  # noqa: E402
from yibao.services.agency import gateway_credentials, institutions, pilots  # noqa: E402
from yibao.services.books import audit, contributions  # noqa: E402
from yibao.services.care import presence, visits  # noqa: E402
from yibao.services.people import account_credits  # noqa: E402
from yibao.services.people import persons as people  # noqa: E402
from yibao.store.db import Database  # noqa: E402

RUNS = tuple(int(x) for x in os.environ.get("YIBAO_BENCH_CLIENTS", "8,32").split(","))
SECONDS = float(os.environ.get("YIBAO_BENCH_SECONDS", "4"))
PEOPLE = 600  # each settles ~¥160 at a time; an account is credited ¥10000 (the maker-checker threshold)
TOTAL = "162.50"  # LINES' total: medfee_sumamt is checked against it
SM4_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
KINDS = ("rest", "fsi_plain", "fsi_sm")
_SEQ = [0]
BUILD_PER_S = int(os.environ.get("YIBAO_BENCH_BUILD_PER_S", "900"))  # requests built per second of a run: above any rate seen here


def seed(db: Database, keyring: Keyring, per_kind: int) -> dict:
    audit.use_key(db, keyring)
    now = db.clock()
    inst_key = gm.Sm2PrivateKey.generate()
    made = {}
    for kind, code in (("rest", "HBENCH0001"), ("fsi_plain", "HBENCH0002"), ("fsi_sm", "HBENCH0003")):
        inst, secret = db.run(lambda c, code=code: institutions.admit(c, now, code=code, region="440300", name="基准测试医院", kind="hospital",
                                                                     level="level2", actor="bench"))
        db.run(lambda c, code=code: pilots.record_signed(c, now, institution_id=code, modes=("onecode", "face", "mobile", "credit"), actor="bench"))
        token = f"bench-fsi-token-{code.lower()}"
        sm = kind == "fsi_sm"
        db.run(lambda c, code=code, token=token, sm=sm: gateway_credentials.issue(
            c, keyring, now, institution_id=code, actor="bench", token=token, sm4_key=SM4_KEY if sm else None,
            sm2_public=inst_key.public_key().to_hex() if sm else None))
        made[kind] = {"inst": inst, "credential": f"{inst.id}.{secret}", "token": token, "visits": []}
    made["fsi_sm"]["sm2"] = inst_key
    # The DEMO catalogue and the demo's item mappings at the three hospitals: each line priced as in bench/api.py (untimed).
    db.run(lambda c: demo_catalogue.load(c, now, [m["inst"] for m in made.values()], actor="bench"))
    db.run(lambda c: contributions.record_collection(c, now, region="440300", amount=PEOPLE * 10_000_00, reference="bench:opening",
                                                     actor="bench"))
    persons: list[str] = []

    def enrol_batch(c, start: int, end: int) -> None:  # noqa: ANN001
        for i in range(start, end):
            p = people.enrol(c, keyring, now, region="440300", id_number=make_id_number("440301", date(1970 + i % 30, 1 + i % 12, 1 + i % 28), i % 1000),
                             name=f"患者{i}", insurance_type="employee", tier=1, actor="bench")
            account_credits.credit_account(c, now, person_id=p.id, amount=10_000_00, client_id=f"bench:{p.id}", actor="bench")
            persons.append(p.id)

    for start in range(0, PEOPLE, 100):
        db.run(lambda c, s=start: enrol_batch(c, s, min(s + 100, PEOPLE)))

    def open_batch(c, kind: str, n: int) -> None:  # noqa: ANN001
        inst, ids = made[kind]["inst"], made[kind]["visits"]
        for _ in range(n):
            person = persons[len(ids) % PEOPLE]
            v = visits.open_visit(c, now, institution=inst, person_id=person, kind="outpatient")
            lines = visits.upload_lines(c, now, institution=inst, visit_id=v.id, items=LINES)
            assert all(r["chrgitm_lv"] for r in lines), "every bench line is in the catalogue (not own expense)"
            presence.record(c, now, kind="card_pin", credential_id=f"bench:{v.id}", institution=inst, person_id=person, owner_id=person,
                            ttl=timedelta(hours=2), visit_id=v.id)
            ids.append((v.id, person))

    for kind in KINDS:
        while len(made[kind]["visits"]) < per_kind:
            db.run(lambda c, kind=kind: open_batch(c, kind, min(500, per_kind - len(made[kind]["visits"]))))
    return made


def _sender(setup: dict) -> wire.Sender:
    inst = setup["inst"]
    return wire.Sender(inst.id, setup["token"], mdtrtarea_admvs=inst.region, sm4_key=SM4_KEY if "sm2" in setup else None,
                       sm2_private=setup.get("sm2"))


def _headers_text(headers: dict[str, str]) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-type")


def sign_in(base: str, setup: dict) -> str:
    import httpx

    sender = _sender(setup)
    headers, body = wire.request(sender, "9001", {"signIn": {"opter_no": "bench"}}, datetime.now(timezone.utc))
    answer = wire.open_output(sender, wire.loads(httpx.post(f"{base}/fsi/api/rsfComIfsService/callService", content=body, headers=headers).content))
    assert answer["infcode"] == 0, answer
    return answer["output"]["signinoutb"]["sign_no"]


def build(kind: str, setup: dict, sign_no: str, n: int) -> list[tuple[str, str, bytes]]:
    """n requests (path, headers, body) for the next n visits of this kind, built now (their timestamps are fresh)."""
    out = []
    for _ in range(min(n, len(setup["visits"]))):
        visit_id, person = setup["visits"].pop()
        if kind == "rest":
            out.append((f"/api/v1/his/visits/{visit_id}/settle", f"Authorization: Bearer {setup['credential']}\r\nIdempotency-Key: b-{visit_id}\r\n",
                        b'{"account":{"use":true}}'))
            continue
        _SEQ[0] += 1  # code + second + a 4-digit sequence: up to 10 000 distinct ids per second
        payload = {"data": {"mdtrt_id": visit_id, "psn_no": person, "med_type": "11", "medfee_sumamt": wire.Number(TOTAL), "psn_setlway": "01",
                            "acct_used_flag": "1", "insutype": "310"}}
        now = datetime.now(timezone.utc)
        headers, body = wire.request(_sender(setup), "2207", payload, now, sign_no=sign_no,
                                     msgid=wire.new_msgid(setup["inst"].id, now, _SEQ[0]))
        out.append(("/fsi/api/rsfComIfsService/callService", _headers_text(headers), body))
    return out


async def run(base: str, requests: list[tuple[str, str, bytes]], clients: int, seconds: float, check) -> tuple[list[float], float]:  # noqa: ANN001
    latencies: list[float] = []
    host, port = base.split("//")[1].split(":")
    stop = time.monotonic() + seconds
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < stop and requests:
                path, headers, body = requests.pop()
                t0 = time.perf_counter()
                status, answer = await _post(reader, writer, path, headers, body)
                latencies.append(time.perf_counter() - t0)
                if not check(status, answer):
                    errors += 1
                    if errors <= 3:
                        print(f"{path}: {status} {answer[:300]!r}", file=sys.stderr)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return latencies, time.perf_counter() - t0


async def healthz(base: str, clients: int, seconds: float) -> tuple[list[float], float]:
    """The machine's limit: a request that does nothing, on the same server, with the same client."""
    latencies: list[float] = []
    host, port = base.split("//")[1].split(":")
    stop = time.monotonic() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
                await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - t0


def _ok_rest(status: int, answer: bytes) -> bool:
    return status == 200


def _ok_fsi(status: int, answer: bytes) -> bool:
    return status == 200 and b'"infcode":0' in answer


def bench(db_name: str, url: str, workers: int) -> None:
    db = fresh_database(url)
    key = os.urandom(32)
    per_kind = int(SECONDS * BUILD_PER_S * len(RUNS)) + 300
    made = seed(db, Keyring(key), per_kind)
    db.dispose()
    proc, base = serve(url, key, workers, YIBAO_RECOVERY_INTERVAL="0")
    try:
        signs = {kind: sign_in(base, made[kind]) for kind in KINDS if kind != "rest"}
        for kind in KINDS:  # warm up
            asyncio.run(run(base, build(kind, made[kind], signs.get(kind, ""), 50), 4, 1.0, _ok_rest if kind == "rest" else _ok_fsi))
        for clients in RUNS:
            lat, elapsed = asyncio.run(healthz(base, clients, min(SECONDS, 2.0)))
            limit = figures(lat, elapsed, unit="requests")
            print(json.dumps({"bench": "fsi", "db": db_name, "workers": workers, "clients": clients, "path": "GET /healthz (the machine's limit)",
                              **limit}), flush=True)
            for kind in KINDS:
                setup = made[kind]
                # Built fresh (their timestamps well within the window); what a run leaves unsent serves the next.
                spare = setup.setdefault("spare", [])
                requests = build(kind, setup, signs.get(kind, ""), max(0, int(BUILD_PER_S * SECONDS) - len(spare))) + spare
                lat, elapsed = asyncio.run(run(base, requests, clients, SECONDS, _ok_rest if kind == "rest" else _ok_fsi))
                setup["spare"] = requests
                fig = figures(lat, elapsed)
                print(json.dumps({"bench": "fsi", "db": db_name, "workers": workers, "clients": clients,
                                  "path": {"rest": "REST settle", "fsi_plain": "2207 plain", "fsi_sm": "2207 SM4/SM2"}[kind], **fig,
                                  "of_limit": round(fig["per_s"] / max(limit["per_s"], 1), 3)}), flush=True)
    finally:
        stop(proc)


def main() -> None:
    workers = int(os.environ.get("YIBAO_BENCH_WORKERS", "2"))
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", workers)
    pg = os.environ.get("YIBAO_BENCH_POSTGRES_URL")
    if pg:
        bench("postgresql", pg, workers)
    else:
        print(json.dumps({"bench": "fsi", "db": "postgresql", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)


if __name__ == "__main__":
    main()
