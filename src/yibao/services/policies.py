"""Which policy prices a visit: the insured region's for the visit's year; the treatment region's catalogue."""

from __future__ import annotations

from yibao.domain.errors import InputError
from yibao.domain.policy import Policy
from yibao.policies.loader import builtin_policy


def policy_for(region: str, year: int) -> Policy:
    policy = builtin_policy(region, year)
    if policy is None:
        raise InputError("region", "no_policy", f"统筹区 {region} 没有 {year} 年的待遇政策", f"no policy for region {region} in {year}")
    return policy


def catalogue_for(region: str, year: int) -> Policy | None:
    return builtin_policy(region, year)
