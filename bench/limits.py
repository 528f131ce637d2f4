"""The machine's limits, measured in the same `make bench` run as the platform's figures, so that every figure can be
read as a share of what this machine can do at all (issue "The money path at production speed", point 4).

Prints one JSON line per measurement:
- `fsync`: 4 KiB written and `os.fdatasync`-ed (the cost of one durable commit) in the folder the SQLite benches use,
  per second and its mean in ms;
- `pgbench`: `pgbench -N` (the simple-update mix without the hot branch/teller rows) against the PostgreSQL of
  `YIBAO_BENCH_POSTGRES_URL`, at 8 and 32 clients, in a database of its own (`yibao_bench_limits`, made and dropped
  here: never the tests' or the benches' own), transactions per second;
- `cpu`: the cores and the load average when the run started (a busy machine reads lower everywhere).
A limit that cannot be measured (no pgbench, no PostgreSQL) prints why and is skipped, never guessed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

SECONDS = float(os.environ.get("YIBAO_BENCH_SECONDS", "4"))
CLIENTS = tuple(int(x) for x in os.environ.get("YIBAO_BENCH_CLIENTS", "8,32").split(","))
LIMITS_DB = "yibao_bench_limits"


def emit(doc: dict) -> None:
    print(json.dumps({"bench": "limits", **doc}, ensure_ascii=False), flush=True)


def fsync_rate(seconds: float) -> dict:
    """Durable 4 KiB appends per second in a temporary file of the working folder's file system."""
    block = os.urandom(4096)
    with tempfile.NamedTemporaryFile(dir=".", prefix=".bench-fsync-") as f:
        fd = f.fileno()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        elapsed = time.perf_counter() - start
    return {"what": "fsync", "writes": n, "per_s": round(n / elapsed), "mean_ms": round(elapsed / n * 1000, 3)}


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _psql(url: str, *statements: str) -> subprocess.CompletedProcess:
    """Each statement on its own (-c per statement: CREATE/DROP DATABASE cannot run inside one transaction)."""
    args = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q"]
    for sql in statements:
        args += ["-c", sql]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def pgbench(url: str, seconds: float) -> None:
    """`pgbench -N` at each client count, in a database made for it (scale 10: enough rows that clients rarely collide)."""
    if shutil.which("pgbench") is None or shutil.which("psql") is None:
        emit({"what": "pgbench", "skipped": "pgbench or psql is not installed (Debian: postgresql-client)"})
        return
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    made = _psql(admin, f"DROP DATABASE IF EXISTS {LIMITS_DB}", f"CREATE DATABASE {LIMITS_DB}")
    if made.returncode != 0:
        emit({"what": "pgbench", "skipped": f"cannot make database {LIMITS_DB}: {made.stderr.strip()[:200]}"})
        return
    target = _with_db(admin, LIMITS_DB)
    try:
        init = subprocess.run(["pgbench", "-i", "-q", "-s", "10", target], capture_output=True, text=True, timeout=600)
        if init.returncode != 0:
            emit({"what": "pgbench", "skipped": f"pgbench -i failed: {init.stderr.strip()[:200]}"})
            return
        for clients in CLIENTS:
            run = subprocess.run(["pgbench", "-N", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)), "-T",
                                  str(max(1, round(seconds))), target], capture_output=True, text=True, timeout=600)
            tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", run.stdout)
            latency = re.search(r"latency average = ([0-9.]+) ms", run.stdout)
            if run.returncode != 0 or tps is None:
                emit({"what": "pgbench", "clients": clients, "failed": (run.stderr or run.stdout).strip()[:200]})
                continue
            emit({"what": "pgbench -N", "db": "postgresql", "clients": clients, "per_s": round(float(tps.group(1))),
                  "mean_ms": float(latency.group(1)) if latency else None})
    finally:
        _psql(admin, f"DROP DATABASE IF EXISTS {LIMITS_DB}")


def main() -> None:
    emit({"what": "cpu", "cores": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)})
    emit(fsync_rate(min(SECONDS, 3.0)))
    url = os.environ.get("YIBAO_BENCH_POSTGRES_URL")
    if url:
        pgbench(url, SECONDS)
    else:
        emit({"what": "pgbench", "skipped": "set YIBAO_BENCH_POSTGRES_URL"})


if __name__ == "__main__":
    main()
