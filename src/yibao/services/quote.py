"""Price a bill without saving anything: pick the policies, parse, settle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yibao.domain.bill import Bill
from yibao.domain.errors import InputError
from yibao.domain.policy import Policy
from yibao.domain.settlement import Settlement, settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies.loader import builtin_policy, builtin_years, load_policy_file


def policies_for(bill: Bill, policy_file: str | Path | None = None) -> tuple[Policy, Policy | None]:
    """The insured region's policy (a given file, or the built-in one) and the treatment region's catalogue."""
    if policy_file is not None:
        policy = load_policy_file(policy_file)
    else:
        policy = builtin_policy(bill.insured_region, bill.date.year)
        if policy is None:
            years = builtin_years(bill.insured_region)
            if years:  # the region is known: the date is what falls outside
                raise InputError("date", "no_policy_for_year", f"统筹区 {bill.insured_region} 只有 {'、'.join(map(str, years))} 年的策略文件",
                                 f"region {bill.insured_region} has policy files for {', '.join(map(str, years))} only; pass one with --policy")
            raise InputError("insured_region", "no_policy", f"没有统筹区 {bill.insured_region} 的策略文件，可用 --policy 指定",
                             f"no policy on file for region {bill.insured_region}; pass one with --policy")
    catalogue = policy if not bill.cross_region else builtin_policy(bill.treatment_region, bill.date.year)
    return policy, catalogue


def quote(data: Any, policy_file: str | Path | None = None) -> Settlement:
    bill = bill_from_mapping(data)
    policy, catalogue = policies_for(bill, policy_file)
    return settle(bill, policy, catalogue)
