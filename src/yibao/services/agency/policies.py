"""Which policies price a bill: the insured region's for the year, and the treatment region's catalogue
(就医地目录、参保地政策). Used by the quote command and by settlement alike."""

from __future__ import annotations

from yibao.domain.errors import InputError
from yibao.domain.policy import Policy
from yibao.policies.loader import BUILTIN_DIR, builtin_policy, builtin_years


def known_regions() -> list[str]:
    """The pooling regions the platform serves: those with a policy file (policies/<region>-<year>.yaml)."""
    return sorted({path.stem.split("-")[0] for path in BUILTIN_DIR.glob("*-*.yaml")})


def require_known_region(region: str, field: str = "region") -> None:
    """Refuse a region code that is not 6 digits, or that no policy file configures (an institution admitted
    there could never settle: no policy prices its bills)."""
    if not (len(region) == 6 and region.isdigit()):
        raise InputError(field, "invalid_region", "统筹区代码应为6位数字", "must be a 6-digit region code")
    known = known_regions()
    if region not in known:
        raise InputError(field, "unknown_region", f"统筹区 {region} 不存在（已配置：{'、'.join(known)}）",
                         f"region {region} does not exist (configured: {', '.join(known)})")


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
