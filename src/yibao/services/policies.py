"""Which policies price a bill: the insured region's for the year, and the treatment region's catalogue
(就医地目录、参保地政策). Used by the quote command and by settlement alike."""

from __future__ import annotations

from yibao.domain.errors import InputError
from yibao.domain.policy import Policy
from yibao.policies.loader import builtin_policy, builtin_years


def policy_for(region: str, year: int, field: str = "region", date_field: str = "date") -> Policy:
    policy = builtin_policy(region, year)
    if policy is None:
        years = builtin_years(region)
        if years:  # the region is known: the date is what falls outside
            raise InputError(date_field, "no_policy_for_year", f"统筹区 {region} 只有 {'、'.join(map(str, years))} 年的待遇政策",
                             f"region {region} has policies for {', '.join(map(str, years))} only")
        raise InputError(field, "no_policy", f"统筹区 {region} 没有待遇政策文件", f"no policy on file for region {region}")
    return policy


def catalogue_for(region: str, year: int) -> Policy | None:
    return builtin_policy(region, year)


def policies_for(insured_region: str, treatment_region: str, year: int) -> tuple[Policy, Policy | None]:
    """The insured region's policy and the treatment region's catalogue (None when none is on file)."""
    policy = policy_for(insured_region, year, field="insured_region")
    return policy, policy if treatment_region == insured_region else catalogue_for(treatment_region, year)
