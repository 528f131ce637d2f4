"""Medical-insurance mixed orders (医保混合支付) as WeChat Pay models them: the fee parts and their identity. Pure.

A mixed order carries the insurance settlement's parts (integer fen): `med_ins_gov_fee` (the fund), `med_ins_self_fee`
(the personal account), `med_ins_other_fee` (other insurance funds), `med_ins_cash_fee` (the self-pay part the
settlement leaves); the wallet collects `wechat_pay_cash_fee` = `med_ins_cash_fee` + Σ additions − Σ reductions, and
`total_fee` = gov + self + other + `wechat_pay_cash_fee` + Σ reductions (research nhsa_interface.md §4; WeChat refuses
a violation with RULE_LIMIT).
"""

from __future__ import annotations

from dataclasses import dataclass

MIX_PAY_TYPES = ("CASH_ONLY", "INSURANCE_ONLY", "CASH_AND_INSURANCE")


@dataclass(frozen=True)
class Parts:
    gov: int
    self_: int
    other: int
    cash: int

    @property
    def insurance(self) -> int:
        return self.gov + self.self_ + self.other


def mix_pay_type(parts: Parts) -> str:
    """The type a settlement's parts call for: cash and insurance, one of them (nothing at all is no order)."""
    if parts.insurance and parts.cash:
        return "CASH_AND_INSURANCE"
    return "INSURANCE_ONLY" if parts.insurance else "CASH_ONLY"


def identity_error(parts: Parts, *, total_fee: int, wechat_pay_cash_fee: int, additions: int = 0, reductions: int = 0) -> str | None:
    """The field that breaks the amount identity, or None: `wechat_pay_cash_fee` first, then `total_fee`."""
    if min(parts.gov, parts.self_, parts.other, parts.cash, total_fee, wechat_pay_cash_fee, additions, reductions) < 0:
        return "total_fee"
    if wechat_pay_cash_fee != parts.cash + additions - reductions:
        return "wechat_pay_cash_fee"
    if total_fee != parts.insurance + wechat_pay_cash_fee + reductions:
        return "total_fee"
    return None
