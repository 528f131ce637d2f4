"""National codes and field names ↔ yibao's, in one place: `med_type`, `insutype`, `mdtrt_cert_type`,
`psn_setlway`, `acct_used_flag`, the fee line (`feedetail[]` → the item dicts `visits.upload_lines` takes),
and the fields yibao's errors name, said the national way."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.domain.errors import InputError, YibaoError, one_of

# med_type 医疗类别 → visit kind. 14 门诊慢特病 is not modelled (its own benefits): refused, not priced as 11.
MED_TYPES = {"11": "outpatient", "12": "outpatient", "13": "emergency", "21": "inpatient", "41": "pharmacy"}
MED_TYPE_OF_KIND = {"outpatient": "11", "emergency": "13", "inpatient": "21", "pharmacy": "41"}
INSUTYPE = {"employee": "310", "resident": "390", "child": "390"}  # children are insured under the residents' scheme
CERT_TYPES = {"01": "ecard", "02": "id_number", "03": "card"}  # mdtrt_cert_type: 电子凭证 / 身份证 / 社保卡
CLASS_OF_LEVEL = {"01": "A", "02": "B", "03": "C"}  # chrgitm_lv 收费项目等级: 甲 / 乙 / 丙
LEVEL_OF_CLASS = {v: k for k, v in CLASS_OF_LEVEL.items()}
PAYCODE = re.compile(r"^91\d{18}$")  # a dynamic payment code shown as the e-voucher (services/payments/paycodes.py)


def med_type_kind(value: Any, field: str, *, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        if value == "14":
            raise InputError(field, "med_type_not_supported", "门诊慢特病（14）待遇尚未在本平台开通，请按普通门诊（11）办理",
                             "chronic and special outpatient care (14) is not offered here yet; register it as 11")
        zh, en = one_of(allowed)
        raise InputError(field, "invalid_med_type", f"医疗类别应为 {zh}", f"must be {en}")
    return MED_TYPES[value]


def insutype_of(insurance_type: str) -> str:
    return INSUTYPE.get(insurance_type, insurance_type)


def check_insutype(value: Any, insurance_type: str, field: str) -> None:
    """An `insutype` given must be the person's (310 employees, 390 residents and children)."""
    if value in (None, ""):
        return
    if value not in ("310", "390"):
        raise InputError(field, "invalid_insutype", "险种类型应为 310（职工基本医疗保险）或 390（城乡居民基本医疗保险）",
                         "must be 310 (employees') or 390 (residents')")
    if value != insutype_of(insurance_type):
        raise InputError(field, "insutype_mismatch", f"险种类型与参保人不符（应为 {insutype_of(insurance_type)}）",
                         f"is not the person's insurance type ({insutype_of(insurance_type)})")


def account_flag(value: Any, field: str) -> bool:
    if value in ("1", 1):
        return True
    if value in ("0", 0, None, ""):
        return False
    raise InputError(field, "invalid_flag", "个人账户使用标志应为 0 或 1", "must be 0 or 1")


def check_setlway(value: Any, field: str) -> None:
    if value in (None, "", "01"):
        return
    raise InputError(field, "psn_setlway_not_supported", "个人结算方式仅支持 01（按项目结算）", "only 01 (settle by items) is offered")


def yuan_text(value: Any, field: str) -> str | None:
    """A national amount (a JSON number, exactly parsed, or a string) as the yuan text the services parse."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InputError(field, "invalid_number", "应为金额（元，最多两位小数）", "must be an amount in yuan with at most 2 decimals")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InputError(field, "invalid_number", "应为金额（元，最多两位小数）", "must be an amount in yuan with at most 2 decimals") from None
    if not number.is_finite() or abs(number.adjusted()) > 20:  # written out, 1E+999999999 would be a billion digits
        raise InputError(field, "invalid_number", "金额超出范围", "the amount is out of range")
    return format(number, "f")


# feedetail[] field → the item key the services name in their errors (`lines[i].<key>`)
FEE_FIELDS = {"feedetl_sn": "feedetl_sn", "med_list_codg": "med_list_codg", "medins_list_codg": "medins_list_codg",
              "medins_list_name": "name", "pric": "unit_price", "cnt": "quantity", "fee_ocur_time": "fee_ocur_time",
              "rxno": "prescription", "bilg_dr_codg": "prescriber", "hosp_appr_flag": "hosp_appr_flag",
              "chrgitm_lv": "chrgitm_lv", "pric_uplmt_amt": "pric_uplmt_amt", "selfpay_prop": "selfpay_prop"}
DECIDED = ("chrgitm_lv", "pric_uplmt_amt", "selfpay_prop")  # what the catalogue decides: 2204 outputs, never inputs
NATIONAL_OF_ITEM = {v: k for k, v in FEE_FIELDS.items()}


def fee_items(feedetail: Any, field: str = "feedetail") -> list[dict[str, Any]]:
    """The national fee lines (2204 / 2301 `feedetail[]`) as the item dicts `visits.upload_lines` takes — the one place
    the two meet. A line names its item by the national code `med_list_codg` and/or the hospital's own code
    `medins_list_codg` (resolved through its mapping, 对照); the platform decides class, cap and ratio from the
    catalogue. `chrgitm_lv`, `pric_uplmt_amt` and `selfpay_prop` are 2204 *outputs*: a HIS sending them is refused by
    the service, naming the field (never trusted). A line with `rxno` is a prescription and names its prescriber in
    `bilg_dr_codg`; `hosp_appr_flag` 1 says the hospital approved a limited item. `det_item_fee_sumamt`, when sent,
    must be pric × cnt. Other national fields (dosage, department, ...) are accepted and not used."""
    if not isinstance(feedetail, list) or not feedetail:
        raise InputError(field, "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    items = []
    for i, line in enumerate(feedetail):
        path = f"{field}[{i}]"
        if not isinstance(line, dict):
            raise InputError(path, "invalid_object", "应为 JSON 对象", "must be a JSON object")
        item: dict[str, Any] = {"feedetl_sn": line.get("feedetl_sn"),
                                "unit_price": yuan_text(line.get("pric"), f"{path}.pric"),
                                "quantity": yuan_text(line.get("cnt"), f"{path}.cnt")}
        for key in ("med_list_codg", "medins_list_codg", "fee_ocur_time"):
            if line.get(key) not in (None, ""):
                item[key] = line[key]
        for key in DECIDED:  # passed on so the service refuses them by name
            if key in line:
                item[key] = line[key]
        name = line.get("medins_list_name")
        if name:
            item["name"] = name
        approval = line.get("hosp_appr_flag")
        if approval not in (None, ""):
            if approval not in ("0", "1", 0, 1):
                raise InputError(f"{path}.hosp_appr_flag", "invalid_choice", "医院审批标志应为 1（已审批）或 0", "must be 1 (approved) or 0")
            item["hosp_appr_flag"] = approval in ("1", 1)
        if line.get("rxno"):
            item["prescription"] = True
            item["prescriber"] = line.get("bilg_dr_codg")
        total = line.get("det_item_fee_sumamt")
        if total not in (None, "") and item["unit_price"] is not None and item["quantity"] is not None \
                and Decimal(item["unit_price"]).as_tuple().exponent >= -2:  # a malformed price: the service names it first
            try:
                computed = (Decimal(item["unit_price"]) * Decimal(item["quantity"])).quantize(Decimal("0.01"), "ROUND_HALF_UP")
                if Decimal(str(total)) != computed:
                    raise InputError(f"{path}.det_item_fee_sumamt", "total_mismatch", f"明细总额应等于单价×数量（{computed}）",
                                     f"must equal pric × cnt ({computed})")
            except InvalidOperation:
                pass  # the price or count is malformed: the service names it
        items.append(item)
    return items


_LINES = re.compile(r"^lines\[(\d+)\]\.(\w+)$")
FIELD_NAMES = {"visit_id": "mdtrt_id", "person_id": "psn_no", "account": "acct_used_flag", "account.payer_person_id": "acct_used_flag",
               "credential_no": "mdtrt_cert_no", "lines": "input.feedetail", "kind": "med_type", "msgid": "msgid", "omsgid": "omsgid"}


def national_field(field: str, fee_field: str = "input.feedetail") -> str:
    """A service's field name the national way (`lines[2].unit_price` → `feedetail[2].pric`, `visit_id` → `mdtrt_id`)."""
    m = _LINES.match(field)
    if m:
        return f"{fee_field}[{m.group(1)}].{NATIONAL_OF_ITEM.get(m.group(2), m.group(2))}"
    return FIELD_NAMES.get(field, field)


def err_msg(exc: YibaoError, fee_field: str = "input.feedetail") -> str:
    """`err_msg`: the field, the rule in Chinese, then English, and the code."""
    field = national_field(exc.field, fee_field) if exc.field else ""
    where = f"{field}：" if field else ""
    return f"{where}{exc.message_zh}（{exc.message_en}）[{exc.code}]"
