"""Settlement engine throughput on one core: one JSON line per bill size.

Target (issue "Settlement engine"): a 20-line bill in at most 100 µs median (10,000 bills/s).
Times `settle()` alone — the pure engine — on an inpatient employee bill that exercises the line
split, a cap-free pooled fund, the large-amount layer and the personal account.
"""

from __future__ import annotations

import json
import os
import statistics
import time

from yibao.domain.settlement import settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies.loader import builtin_policy

CLASSES = ("A", "B", "B", "A", "C", "unlisted", "A", "B")


def make_bill(n_lines: int):
    lines = []
    for i in range(n_lines):
        cls = CLASSES[i % len(CLASSES)]
        line = {"code": f"X{i:04d}", "name": f"项目{i}", "class": cls, "unit_price": f"{(i * 37) % 900 + 12}.{i % 100:02d}",
                "quantity": str(i % 5 + 1)}
        if cls == "B" and i % 3 == 0:
            line["price_cap"] = f"{(i * 37) % 900}.00"
        if cls == "B" and i % 2 == 0:
            line["self_pay_ratio"] = "0.20"
        lines.append(line)
    return bill_from_mapping({
        "insured_region": "440300", "treatment_region": "440300", "date": "2026-11-22",
        "person": {"insurance_type": "employee", "tier": 1, "retired": False, "age": 45},
        "visit": {"kind": "inpatient", "institution_level": "level3", "admission_number": 1},
        "lines": lines,
        "accumulators": {"pool_fund_paid": "598000.00"},
        "account": {"use": True, "balance": "3000.00"},
    })


def measure(n_lines: int, rounds: int = 60, budget_s: float = 0.02) -> dict:
    policy = builtin_policy("440300", 2026)
    bill = make_bill(n_lines)
    settle(bill, policy, policy)  # warm up
    per_bill = []
    for _ in range(rounds):
        k, start = 0, time.perf_counter()
        while True:
            settle(bill, policy, policy)
            k += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s:
                break
        per_bill.append(elapsed / k)
    median = statistics.median(per_bill)
    # The minimum shows the cost without interference from a shared machine; the median is the target.
    return {"bench": "settlement", "lines": n_lines, "us_per_bill_median": round(median * 1e6, 1), "bills_per_s": round(1 / median),
            "us_per_bill_min": round(min(per_bill) * 1e6, 1)}


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    for n in (5, 20, 200):
        print(json.dumps(measure(n)), flush=True)


if __name__ == "__main__":
    main()
