"""Mobile payment over the national interface (医保移动支付: 6201 upload and publish, 6202 the order, 6301 its query,
6203 refund, 6401 revoke), inputs camelCase as the national mobile interface spells them, in `input.data`.

The mapping (docs/fsi.md "Mobile payment"): without a `payAuthNo`, a 6201 order IS the REST bill
(services/payments/bills.py) — published to the holder's phone, paid by the holder in yibao's app with the PIN, and
6202 authorises nothing (it answers the order as it stands). With a `payAuthNo` — the holder's authorisation in a
wallet (services/payments/medins.py) — 6201 binds it to the order and 6202 pre-settles: the authorisation is the
holder's presence, the fund and account parts are held, and the wallet's mixed order completes or undoes them.

Every call after 6201 names the order (`payOrdId`, yibao's payment id) and presents its `payToken`
(services/payments/bill_tokens.py); another institution's order is "not found". 6203 calls the payment institution
for the cash: it is a flow (transactions.FLOWS), its units with the call between them."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import InputError, NotFound, YibaoError
from yibao.domain.money import parse_yuan
from yibao.formats.fsi import Number, amount, inf_time
from yibao.fsi import codes
from yibao.fsi.transactions import Call, OnceOnly, flows, handles
from yibao.services import Context
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import bill_tokens, bills, medins, refunds
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.services.people import persons as people

F = "input.data"
# The services' field names, the national mobile interface's way.
FIELDS = {"payment_id": "payOrdId", "pay_token": "payToken", "visit_id": "mdtrtId", "person_id": "psnNo", "scope": "refdType",
          "Idempotency-Key": "appRefdSn", "lines": "feedetailList", "kind": "medType",
          "pay_auth_no": "payAuthNo"}
REFD_TYPES = {"ALL": "all", "CASH": "cash", "HI": "insurance"}  # refdType → the refund's scope
REF_STATUS = {"succeeded": "SUCC", "failed": "FAIL", "requested": "EXP", "unknown": "EXP"}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def _national(exc: YibaoError) -> YibaoError:
    """A service's refusal naming its field the national mobile way (`lines[1].unit_price` →
    `input.data.feedetailList[1].pric`, `payment_id` → `input.data.payOrdId`)."""
    field = exc.field or ""
    if field.startswith("lines["):
        national = codes.national_field(field, f"{F}.feedetailList")
        base, _, leaf = national.rpartition(".")
        exc.field = f"{base}.{_camel(leaf)}"
    elif field in FIELDS:
        exc.field = f"{F}.{FIELDS[field]}"
    return exc


def _renaming(fn: Callable[[Call, Connection], Any]) -> Callable[[Call, Connection], Any]:
    def handler(call: Call, conn: Connection) -> Any:
        try:
            out = fn(call, conn)
        except YibaoError as exc:
            raise _national(exc) from None
        return _national(out) if isinstance(out, YibaoError) else out
    handler.__doc__ = fn.__doc__
    return handler


# ---- reading the input ----------------------------------------------------------------------------------

def _data(call: Call) -> dict[str, Any]:
    d = call.input.get("data")
    if not isinstance(d, dict):
        raise InputError(F, "invalid_object", "应为 JSON 对象", "must be a JSON object")
    org = d.get("orgCodg")
    if org not in (None, "") and org != call.institution.id:
        raise InputError(f"{F}.orgCodg", "not_the_caller", "机构编码与网关认证的机构不符", "is not the institution the gateway headers authenticate")
    return d


def _text(d: dict[str, Any], key: str, *, required: bool = True, max_length: int = 40) -> str | None:
    value = d.get(key)
    if value is None or value == "":
        if required:
            raise InputError(f"{F}.{key}", "required", "缺少必填字段", "is required")
        return None
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise InputError(f"{F}.{key}", "invalid_text", f"应为不超过{max_length}个字符的字符串", f"must be text of at most {max_length} characters")
    return value


def _fen(d: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    text = codes.yuan_text(d.get(key), f"{F}.{key}")
    if text is None:
        if required:
            raise InputError(f"{F}.{key}", "required", "缺少必填字段", "is required")
        return None
    fen = parse_yuan(text, f"{F}.{key}")
    if fen < 0:
        raise InputError(f"{F}.{key}", "negative_amount", "金额不能为负", "must not be negative")
    return fen


def _order(call: Call, conn: Connection, d: dict[str, Any]) -> tuple[Order, str]:
    """The order `payOrdId` names, this institution's, with its `payToken`: (order, medOrgOrd)."""
    order_id = _text(d, "payOrdId", max_length=32)
    token = _text(d, "payToken", max_length=128)
    assert order_id is not None and token is not None
    return bill_tokens.order_for(conn, institution_id=call.institution.id, order_id=order_id, token=token)


# ---- the order as the national interface sees it -------------------------------------------------------

def ord_stas(conn: Connection, order: Order) -> str:
    """`ordStas` of a payment order (national codes, research §4; [guess] where marked in docs/fsi.md)."""
    if order.status == po.BILLED:
        return "1"  # 预结算完成: priced and on the holder's phone
    if order.status == po.COMPLETED:
        return "6"  # 结算完成
    if order.status == po.REFUNDED:
        return "7"  # 已退款
    if order.status == po.REFUNDING:
        return "17"  # 退款中 [guess: vendor-local code]
    if order.status == po.PARTIALLY_REFUNDED:
        insurance, _ = refunds.given_back(conn, order)
        return "8" if insurance else "9"  # 已医保全部退款 / 仅自费全部退款
    if order.status == po.VOIDED:
        revoked = order.void_reason == po.WITHDRAWN or (order.method == "medins" and order.void_reason == po.ABANDONED)
        return "12" if revoked else "15"  # 已撤销 (a wallet's pre-settlement revoked, or never ordered) / 结算失败
    return "2"  # 待支付 / 支付中: the holder is paying (held, PIN, cash asked)


def _split(conn: Connection, call: Call, order: Order, *, use_account: bool = False) -> tuple[int, int, int, int]:
    """(feeSumamt, fundPay, psnAcctPay, ownPayAmt) in fen: the order's own once the holder has paid or is paying; while
    the bill waits, as the platform prices it now without the account — the holder chooses the account in the app.
    ``use_account``: a 6201 carrying the holder's pay_auth_no and acctUsedFlag 1 — priced with the account (the holder
    authorised; nothing is held until 6202)."""
    if order.status != po.BILLED:
        return order.total, order.fund_total, order.account_pay, order.cash_pay
    doc = settlement.presettle(conn, call.now, institution=call.institution, visit_id=order.visit_id,
                               account=AccountRequest(use=use_account), holder_present=use_account)
    return (parse_yuan(doc["medfee_sumamt"]), parse_yuan(doc["fund_pay_sumamt"]), parse_yuan(doc["acct_pay"]),
            parse_yuan(doc["psn_cash_pay"]))


def _amounts(total: int, fund: int, account: int, cash: int) -> dict[str, Number]:
    assert total == fund + account + cash  # feeSumamt = ownPayAmt + psnAcctPay + fundPay
    return {"feeSumamt": amount(total), "ownPayAmt": amount(cash), "psnAcctPay": amount(account), "fundPay": amount(fund)}


def _setl_type(order: Order) -> str | None:
    if order.setl_id is None:
        return None
    insurance, cash = order.fund_total + order.account_pay > 0, order.cash_pay > 0
    return "ALL" if insurance and cash else "CASH" if cash else "HI"


def _order_out(conn: Connection, call: Call, order: Order, med_org_ord: str, *, use_account: bool = False) -> dict[str, Any]:
    out = {"payOrdId": order.id, "ordStas": ord_stas(conn, order), "medOrgOrd": med_org_ord, "mdtrtId": order.visit_id,
           "psnNo": order.person_id, **_amounts(*_split(conn, call, order, use_account=use_account)), "setlType": _setl_type(order),
           "setlId": order.setl_id, "traceTime": inf_time(order.completed_at) if order.completed_at else None}
    if order.method == "medins":  # paid through a wallet: its mixed order (once ordered)
        out["mixTradeNo"] = medins.mix_trade_no_of(conn, order.id)
    return out


# ---- 6201 fee upload: the bill on the holder's phone --------------------------------------------------

def _fee_items(raw: Any) -> list[dict[str, Any]]:
    """`feedetailList[]` (camelCase) as the national fee lines codes.fee_items reads."""
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{F}.feedetailList", "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    lines = []
    for i, line in enumerate(raw):
        if not isinstance(line, dict):
            raise InputError(f"{F}.feedetailList[{i}]", "invalid_object", "应为 JSON 对象", "must be a JSON object")
        lines.append({_snake(k): v for k, v in line.items()})
    try:
        return codes.fee_items(lines, f"{F}.feedetailList")
    except YibaoError as exc:  # named the national snake way by codes: said camelCase, as sent
        base, _, leaf = (exc.field or "").rpartition(".")
        exc.field = f"{base}.{_camel(leaf)}" if base.startswith(f"{F}.feedetailList[") else exc.field
        raise


def _visit_for_upload(call: Call, conn: Connection, d: dict[str, Any]) -> visits.Visit:
    """The visit `mdtrtId` names (its lines uploaded by 2204, or sent here), or one registered for `psnNo`."""
    mdtrt_id = _text(d, "mdtrtId", required=False, max_length=30)
    psn_no = _text(d, "psnNo", required=mdtrt_id is None, max_length=24)
    if mdtrt_id is not None:
        try:
            v = visits.get(conn, call.institution.id, mdtrt_id)
        except NotFound:
            raise NotFound(f"{F}.mdtrtId", "not_found", "就诊记录不存在", "visit not found") from None
        if psn_no is not None and psn_no != v.person_id:
            raise InputError(f"{F}.psnNo", "psn_no_mismatch", "人员编号与该就诊不符", "is not the visit's person")
        return v
    if d.get("feedetailList") in (None, []):
        raise InputError(f"{F}.mdtrtId", "required", "应给出已登记的就诊（mdtrtId），或本次费用明细（feedetailList）",
                         "name a registered visit (mdtrtId) or send this visit's fee lines (feedetailList)")
    assert psn_no is not None
    person = people.get(conn, psn_no)
    if person is None or person.status != "active":
        raise NotFound(f"{F}.psnNo", "not_found", "参保人不存在或已停保", "insured person not found or not active")
    codes.check_insutype(d.get("insutype"), person.insurance_type, f"{F}.insutype")
    kind = "pharmacy" if call.institution.kind == "pharmacy" else "outpatient"
    if d.get("medType") not in (None, ""):
        kind = codes.med_type_kind(d.get("medType"), f"{F}.medType", allowed=("11", "12", "13", "41"))
    return visits.open_visit(conn, call.now, institution=call.institution, person_id=person.id, kind=kind)


@handles("6201")
@_renaming
def upload_fee_info(call: Call, conn: Connection) -> OnceOnly:
    """费用明细上传: the visit's fees (sent here, or uploaded by 2204) published as a bill to the holder's phone →
    `payOrdId`, `payToken` (answered once), the split as the platform prices it. `medfeeSumamt`, when sent, must be
    the visit's total. `acctUsedFlag` is accepted and binds nothing: the holder chooses the account in the app."""
    d = _data(call)
    med_org_ord = _text(d, "medOrgOrd", max_length=40)
    assert med_org_ord is not None
    pay_auth_no = _text(d, "payAuthNo", required=False, max_length=64)
    use_account = codes.account_flag(d.get("acctUsedFlag"), f"{F}.acctUsedFlag")
    v = _visit_for_upload(call, conn, d)
    if d.get("feedetailList") not in (None, []):
        visits.upload_lines(conn, call.now, institution=call.institution, visit_id=v.id, items=_fee_items(d["feedetailList"]))
    order, token = bill_tokens.publish(conn, call.now, institution=call.institution, visit_id=v.id, request_key=f"fsi:{call.msgid}",
                                       request_hash=f"bill:{v.id}", med_org_ord=med_org_ord, actor=call.actor,
                                       method="medins" if pay_auth_no else "mobile")
    if pay_auth_no is not None:  # the holder's authorisation in a wallet: bound to this order, and no other
        medins.bind(conn, call.now, pay_auth_no=pay_auth_no, order=order)
    out = _order_out(conn, call, order, med_org_ord, use_account=use_account and pay_auth_no is not None)
    sent = _fen(d, "medfeeSumamt", required=False)
    if sent is not None and sent != parse_yuan(str(out["feeSumamt"])):
        raise InputError(f"{F}.medfeeSumamt", "medfee_sumamt_mismatch", f"医疗费总额与费用明细合计（{out['feeSumamt']}）不符",
                         f"does not match the fee lines' total ({out['feeSumamt']})")  # raised: the bill and lines roll back
    out = {**out, "payToken": token}
    return OnceOnly(out, {**out, "payToken": None})


def _no_pay_auth() -> InputError:
    return InputError(f"{F}.payAuthNo", "pay_auth_not_used", "该订单由 6201 不带 payAuthNo 发布到参保人 App：参保人在 App 中凭支付密码支付，6202/6301 查询结果",
                      "this order was published to the holder's app by a 6201 without payAuthNo: the holder pays it there with "
                      "the PIN; 6202 / 6301 answer the result")


# ---- 6202 the order, 6301 its query --------------------------------------------------------------------

@handles("6202")
@_renaming
def pay_order(call: Call, conn: Connection) -> dict[str, Any]:
    """支付下单. With `payAuthNo` (an order 6201 bound to the holder's wallet authorisation): the pre-settlement — the
    authorisation is used up as the holder's presence, the fund and account parts (`acctUsedFlag`) are held, and the
    order waits for the wallet's mixed order (`ordStas` 2). Without: authorises nothing — the holder pays a bill in the
    app; answers the order's state and split (`ordStas` 1 while the bill waits, 2 while paying, 6 once paid)."""
    d = _data(call)
    pay_auth_no = _text(d, "payAuthNo", required=False, max_length=64)
    order, med_org_ord = _order(call, conn, d)
    if pay_auth_no is None and order.method == "medins" and order.status == po.BILLED:
        raise InputError(f"{F}.payAuthNo", "required", "该订单由参保人在支付机构授权，6202 须携带 payAuthNo",
                         "this order was authorised by the holder in a wallet: 6202 carries its payAuthNo")
    if pay_auth_no is not None:
        if order.method != "medins":
            raise _no_pay_auth()
        use_account = codes.account_flag(d.get("acctUsedFlag"), f"{F}.acctUsedFlag")
        order = medins.hold(conn, call.now, institution=call.institution, order=order, pay_auth_no=pay_auth_no, use_account=use_account,
                            actor=call.actor)
    return _order_out(conn, call, order, med_org_ord)


@handles("6301")
@_renaming
def query_order_info(call: Call, conn: Connection) -> dict[str, Any]:
    """订单查询: the order's state, what was paid how (`setlType` ALL|CASH|HI), the amounts, `medOrgOrd`, `setlId`."""
    d = _data(call)
    order, med_org_ord = _order(call, conn, d)
    out = _order_out(conn, call, order, med_org_ord)
    out["refdList"] = [{"appRefdSn": r.request_key.removeprefix("fsi:") if r.request_key.startswith("fsi:") else None, "refStatus": REF_STATUS.get(r.status, "EXP"),
                        "refdSn": r.id, "insuRefdAmt": amount(r.insurance_fen), "cashRefdAmt": amount(r.cash_fen)}
                       for r in refunds.for_order(conn, order.id)]
    return out


# ---- 6401 revoke an unpaid order --------------------------------------------------------------------

@handles("6401")
@_renaming
def revoke_order(call: Call, conn: Connection) -> dict[str, Any]:
    """撤销订单: the bill withdrawn from the holder's phone (REST POST /his/payments/{id}/withdrawal); once paid or
    being paid it cannot be, and once withdrawn the holder cannot pay it. A wallet's order (payAuthNo) is revoked until
    the wallet asks for the cash: a pre-settlement's hold is released, and the wallet's order is refused after."""
    d = _data(call)
    order, med_org_ord = _order(call, conn, d)
    order = bills.withdraw(conn, call.now, institution=call.institution, order_id=order.id, actor=call.actor)
    return _order_out(conn, call, order, med_org_ord)


# ---- 6203 refund ----------------------------------------------------------------------------------------

def _refund_input(call: Call) -> tuple[dict[str, Any], str, dict[str, int]]:
    d = _data(call)
    sn = _text(d, "appRefdSn", max_length=60)
    assert sn is not None
    at = d.get("appRefdTime")
    if at not in (None, "") and not (isinstance(at, str) and len(at) == 14 and at.isdigit()):
        raise InputError(f"{F}.appRefdTime", "invalid_time", "退款申请时间应为 yyyyMMddHHmmss", "must be yyyyMMddHHmmss")
    if d.get("refdType") not in REFD_TYPES:
        raise InputError(f"{F}.refdType", "invalid_choice", "退款类型应为 ALL（全部）、CASH（仅自费）或 HI（仅医保）",
                         "must be ALL, CASH (the cash only) or HI (fund and account only)")
    asked = {key: _fen(d, key) or 0 for key in ("totlRefdAmt", "psnAcctRefdAmt", "fundRefdAmt", "cashRefdAmt")}
    if asked["totlRefdAmt"] != asked["psnAcctRefdAmt"] + asked["fundRefdAmt"] + asked["cashRefdAmt"]:
        raise InputError(f"{F}.totlRefdAmt", "total_mismatch", "退款总额应等于个人账户、基金与现金退款之和",
                         "must equal psnAcctRefdAmt + fundRefdAmt + cashRefdAmt")
    return d, sn, asked


def _check_parts(order: Order, refund: refunds.Refund, asked: dict[str, int]) -> None:
    """The amounts asked must be exactly what the refund gives back: a part is refunded whole or not at all."""
    insurance = refund.insurance_fen > 0
    due = {"fundRefdAmt": order.fund_total if insurance else 0, "psnAcctRefdAmt": order.account_pay if insurance else 0,
           "cashRefdAmt": refund.cash_fen}
    for key, fen in due.items():
        if asked[key] != fen:
            raise InputError(f"{F}.{key}", "refund_amount_mismatch", f"退款金额应为{amount(fen)}元（该部分整笔退还，已退部分不再退）",
                             f"must be {amount(fen)}: a part is refunded whole, and a part given back is not again")


@flows("6203")
async def refund_order(call: Call, ctx: Context) -> tuple[dict[str, Any] | YibaoError, bool]:
    """退款: through the refund service (services/payments/refunds.py) — refdType ALL, CASH or HI, each part whole. The
    cash is asked back from the payment institution between units; `refStatus` SUCC, FAIL, or EXP while its answer is
    unknown (a retry of the msgid, or of `appRefdSn` under a new msgid, asks again; recovery also finishes it)."""
    try:
        d, sn, asked = _refund_input(call)
        digest = hashlib.sha256(repr((d.get("payOrdId"), d["refdType"], sorted(asked.items()))).encode()).hexdigest()

        def start(conn: Connection) -> refunds.Refund:
            order, _ = _order(call, conn, d)
            r = refunds.start(conn, ctx.now(), institution=call.institution, order_id=order.id, request_key=f"fsi:{sn}",
                              request_hash=digest, scope=REFD_TYPES[d["refdType"]], actor=call.actor)
            _check_parts(order, r, asked)  # raised: the refund is not recorded
            return r
        r = await ctx.run(start)
        r = await refunds.drive(ctx, r, actor=call.actor)
    except YibaoError as exc:
        raise _national(exc) from None
    if r.final:
        await his_callbacks.deliver(ctx, r.order_id)
    order = await ctx.run(lambda c: payments.require(c, r.order_id), write=False)
    out = {"payOrdId": r.order_id, "appRefdSn": sn, "refdSn": r.id, "refStatus": REF_STATUS[r.status],
           "totlRefdAmt": amount(r.insurance_fen + r.cash_fen), "psnAcctRefdAmt": amount(order.account_pay if r.insurance_fen else 0),
           "fundRefdAmt": amount(order.fund_total if r.insurance_fen else 0), "cashRefdAmt": amount(r.cash_fen),
           "ordStas": await ctx.run(lambda c: ord_stas(c, payments.require(c, r.order_id)), write=False),
           "errMsg": f"支付机构拒绝退款，未退还任何款项（the payment institution refused; nothing was given back）[{r.error_code or 'declined'}]"
           if r.status == "failed" else None}
    return out, r.final
