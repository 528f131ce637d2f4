"""Price a bill without saving anything: choose the policies and settle."""

from __future__ import annotations

from pathlib import Path

from yibao.domain.bill import Bill
from yibao.domain.settlement import Settlement, settle
from yibao.policies.loader import load_policy_file
from yibao.services.agency.policies import catalogue_for, policies_for


def quote(bill: Bill, policy_file: str | Path | None = None) -> Settlement:
    """A pre-settlement; ``policy_file`` replaces the insured region's built-in policy."""
    if policy_file is None:
        policy, catalogue = policies_for(bill.insured_region, bill.treatment_region, bill.date.year)
    else:
        policy = load_policy_file(policy_file)
        catalogue = policy if not bill.cross_region else catalogue_for(bill.treatment_region, bill.date.year)
    return settle(bill, policy, catalogue)
