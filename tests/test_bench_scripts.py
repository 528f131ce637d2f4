"""The benchmarks that build their data with bulk SQL run at a small size, so a schema change that breaks their set-up
fails here and not at the next `make bench` (a new NOT NULL column did so once: bench/whatif.py and bench/books.py).
Figures are not checked — they are the benchmarks' business (docs/benchmarks.md) — only that each run completes and
what it checks of its own results holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, **env: str) -> list[dict]:
    environ = {k: v for k, v in os.environ.items() if k != "YIBAO_BENCH_POSTGRES_URL"}  # SQLite only: seconds, not minutes
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script)], env={**environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(("script", "env", "benches"), [
    ("whatif.py", {"YIBAO_BENCH_SETTLEMENTS": "2000"}, {"whatif"}),
    ("books.py", {"YIBAO_BENCH_SETTLEMENTS": "2000", "YIBAO_BENCH_STATEMENT_ROWS": "2000"}, {"books.clearing", "books.reconciliation"}),
])
def test_a_bulk_loaded_benchmark_runs_at_a_small_size(script, env, benches):
    lines = [doc for doc in run(script, **env) if doc.get("db") == "sqlite" and "bench" in doc]
    assert {doc["bench"] for doc in lines} == benches, lines
    assert not any("error" in doc for doc in lines), lines
