"""A Settlement in the national interface's names (setlinfo of 2206/2207), amounts as yuan strings."""

from __future__ import annotations

from typing import Any

from yibao.domain.money import format_yuan, ratio_to_text
from yibao.domain.settlement import Settlement


def setlinfo(s: Settlement) -> dict[str, Any]:
    y = format_yuan
    return {
        "medfee_sumamt": y(s.total),
        "fulamt_ownpay_amt": y(s.own_expense),
        "overlmt_selfpay": y(s.over_limit),
        "preselfpay_amt": y(s.pre_self_pay),
        "inscp_scp_amt": y(s.in_scope),
        "act_pay_dedc": y(s.deductible),
        "hifp_pay": y(s.pool_fund),
        "pool_prop_selfpay": ratio_to_text(s.pool_ratio),  # a ratio, numeric(5,4): "0.9000"
        "hifmi_pay": y(s.serious_illness),
        "hifob_pay": y(s.large_amount),
        "maf_pay": y(s.assistance),
        "cvlserv_pay": y(0),  # civil-servant subsidy and enterprise supplement: not modelled, always 0
        "hifes_pay": y(0),
        "oth_pay": y(s.other),
        "fund_pay_sumamt": y(s.fund_total),
        "psn_part_amt": y(s.person_total),
        "acct_pay": y(s.account_pay),
        "acct_mulaid_pay": y(s.mutual_aid_pay),
        "psn_cash_pay": y(s.cash_pay),
        "balc": y(s.balance_after),
    }


def settlement_document(s: Settlement) -> dict[str, Any]:
    """The `yibao quote --json` object: setlinfo amounts plus lines, explanation and policy stamp."""
    y = format_yuan
    doc = setlinfo(s)
    doc["insuplc_admdvs"] = s.insured_region
    doc["mdtrtarea_admvs"] = s.treatment_region
    doc["lines"] = [
        {
            "code": ln.code, "name": ln.name, "class": ln.line_class,
            "det_item_fee_sumamt": y(ln.total), "fulamt_ownpay_amt": y(ln.own_expense),
            "overlmt_amt": y(ln.over_limit), "preselfpay_amt": y(ln.pre_self_pay), "inscp_scp_amt": y(ln.in_scope),
        }
        for ln in s.lines
    ]
    doc["accumulator_delta"] = {k: y(v) for k, v in s.accumulator_delta.as_dict().items()}
    doc["explanation"] = [
        {"step": e.step, "code": e.code, "zh": e.zh, "en": e.en, "amount": None if e.amount is None else y(e.amount), "clause": e.clause}
        for e in s.explanation
    ]
    doc["account_refusal"] = None if s.account_refusal is None else {
        "code": s.account_refusal.code, "zh": s.account_refusal.zh, "en": s.account_refusal.en,
        "failed_conditions": list(s.account_refusal.failed_conditions),
    }
    doc["acct_payer"] = s.account_payer  # whose account paid: self | guardian | family, None when none did
    doc["policy_version"] = s.policy_version
    doc["policy_digest"] = s.policy_digest
    doc["catalogue_version"] = s.catalogue_version
    doc["catalogue_digest"] = s.catalogue_digest
    return doc
