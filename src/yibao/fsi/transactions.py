"""The transactions (`infno`): each a thin handler — read the national input, call the service the REST route
calls (api/routers/his.py), answer in national names. A handler runs inside the gateway's unit of work for the
message (its idempotency record), and returns the `output` — or a refusal that must commit with its answer (a
look-up that counted)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats.fsi import Number, amount, inf_time
from yibao.fsi import codes
from yibao.runtime import idempotency
from yibao.services import Context
from yibao.services.access import gateway
from yibao.services.agency.institutions import Institution
from yibao.services.care import presence, settlement, views, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import paycodes
from yibao.services.people import persons as people


@dataclass(frozen=True)
class Call:
    infno: str
    msgid: str
    institution: Institution
    keyring: Keyring
    now: datetime
    input: dict[str, Any]
    envelope: dict[str, Any]

    @property
    def actor(self) -> str:
        return f"fsi:{self.institution.id}:{self.envelope.get('opter') or ''}"[:60]


Handler = Callable[[Call, Connection], "dict[str, Any] | OnceOnly | YibaoError"]
HANDLERS: dict[str, Handler] = {}


def handles(*infnos: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for infno in infnos:
            HANDLERS[infno] = fn
        return fn
    return register


@dataclass(frozen=True)
class OnceOnly:
    """A handler's output holding a secret answered once (6201's payToken): `output` is answered now, `stored` is what
    the message's idempotency record keeps and a replay of the msgid gets — no secret sits in clear in that table."""
    output: dict[str, Any]
    stored: dict[str, Any]


# A transaction that calls an outside party (a payment institution) runs as a flow: its own units with the call between
# them (docs/architecture.md "One shape for a use case"), given the services' Context. It answers (output or refusal,
# keep): `keep` False means still in progress — not stored, so a retry of the msgid drives it on (api/idempotency.py's
# idempotent_flow, the REST shape).
Flow = Callable[[Call, Context], Awaitable[tuple["dict[str, Any] | YibaoError", bool]]]
FLOWS: dict[str, Flow] = {}


def flows(*infnos: str) -> Callable[[Flow], Flow]:
    def register(fn: Flow) -> Flow:
        for infno in infnos:
            FLOWS[infno] = fn
        return fn
    return register


# ---- reading the input ----------------------------------------------------------------------------------

def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(field, "invalid_object", "应为 JSON 对象", "must be a JSON object")
    return value


def _section(call: Call, name: str) -> dict[str, Any]:
    return _obj(call.input.get(name), f"input.{name}")


def _text(d: dict[str, Any], key: str, field: str, *, required: bool = True, max_length: int = 40) -> str | None:
    value = d.get(key)
    if value is None or value == "":
        if required:
            raise InputError(f"{field}.{key}", "required", "缺少必填字段", "is required")
        return None
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise InputError(f"{field}.{key}", "invalid_text", f"应为不超过{max_length}个字符的字符串", f"must be text of at most {max_length} characters")
    return value


def _visit(call: Call, conn: Connection, d: dict[str, Any], field: str) -> visits.Visit:
    """The visit `mdtrt_id` names (this institution's), checked against `psn_no` when given."""
    visit_id = _text(d, "mdtrt_id", field, max_length=30)
    assert visit_id is not None
    try:
        v = visits.get(conn, call.institution.id, visit_id)
    except NotFound:
        raise NotFound(f"{field}.mdtrt_id", "not_found", "就诊记录不存在", "visit not found") from None
    psn_no = _text(d, "psn_no", field, required=False, max_length=24)
    if psn_no is not None and psn_no != v.person_id:
        raise InputError(f"{field}.psn_no", "psn_no_mismatch", "人员编号与该就诊不符", "is not the visit's person")
    return v


def _visit_data(v: visits.Visit) -> dict[str, Any]:
    return {"mdtrt_id": v.id, "psn_no": v.person_id, "ipt_otp_no": v.id, "med_type": codes.MED_TYPE_OF_KIND[v.kind],
            "insuplc_admdvs": v.insured_region, "mdtrtarea_admvs": v.region}


# ---- 9001 / 9002 sign-in and sign-out ------------------------------------------------------------------

@handles("9001")
def sign_in(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "signIn")
    s = gateway.sign_in(conn, call.now, institution_id=call.institution.id, region=call.institution.region, opter_no=d.get("opter_no"),
                        mac=d.get("mac"), ip=d.get("ip"))
    return {"signinoutb": {"sign_time": inf_time(s.created_at), "sign_no": s.sign_no}}


@handles("9002")
def sign_out(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "signOut")
    gateway.sign_out(conn, call.now, institution_id=call.institution.id, sign_no=d.get("sign_no"), opter_no=d.get("opter_no"))
    return {"signoutoutb": {"sign_time": inf_time(call.now)}}


# ---- 1101 person information -----------------------------------------------------------------------------

@handles("1101")
def person_info(call: Call, conn: Connection) -> dict[str, Any] | YibaoError:
    """What the REST look-up answers (people.lookup_for_institution: masked name, insured region and scheme, status),
    in national sections — never a balance, a birth date or an identity status: 1101 by card (03) reveals no more."""
    d = _section(call, "data")
    cert_type = d.get("mdtrt_cert_type")
    if not isinstance(cert_type, str) or cert_type not in codes.CERT_TYPES:  # a list or an object is no key of the table
        raise InputError("input.data.mdtrt_cert_type", "invalid_choice", "就诊凭证类型应为 01（电子凭证）、02（身份证）或 03（社保卡）",
                         "must be 01 (e-voucher), 02 (ID number) or 03 (card)")
    number = _text(d, "mdtrt_cert_no", "input.data", max_length=64) if cert_type != "02" or d.get("mdtrt_cert_no") else \
        _text(d, "certno", "input.data", max_length=64)
    assert number is not None
    if cert_type == "01" and codes.PAYCODE.match(number):  # the scanned e-voucher: a credential to present, not to look up by
        raise InputError("input.data.mdtrt_cert_no", "paycode_not_for_lookup",
                         "动态医保码（91开头）请在 2206/2207 的 mdtrt_cert_no 中出示；1101 凭电子社保卡号、身份证号或社保卡号查询",
                         "the dynamic payment code (91…) is presented in 2206/2207's mdtrt_cert_no; 1101 looks up by the e-card's "
                         "number, the ID number or the card number")
    result = people.lookup_for_institution(conn, call.keyring, call.now, institution=call.institution, actor=call.actor,
                                           credential_type=codes.CERT_TYPES[cert_type], credential_no=number)
    if isinstance(result, YibaoError):
        return _renamed(result, "input.data.mdtrt_cert_no")  # the miss counted: it commits with its answer
    return {"baseinfo": {"psn_no": result["psn_no"], "psn_name": result["psn_name"], "psn_cert_type": None, "certno": None},
            "insuinfo": [{"insutype": codes.insutype_of(result["insutype"]), "insuplc_admdvs": result["insuplc_admdvs"],
                          "psn_insu_stas": "1" if result["status"] == "active" else "0", "balc": None}],
            "idetinfo": []}


def _renamed(exc: YibaoError, field: str) -> YibaoError:
    exc.field = field
    return exc


# ---- outpatient: 2201 registration, 2202 its cancellation, 2203 visit information ----------------------------

def _person_for_visit(call: Call, conn: Connection, d: dict[str, Any], field: str) -> people.Person:
    psn_no = _text(d, "psn_no", field, max_length=24)
    assert psn_no is not None
    person = people.get(conn, psn_no)
    if person is None or person.status != "active":
        raise NotFound(f"{field}.psn_no", "not_found", "参保人不存在或已停保", "insured person not found or not active")
    codes.check_insutype(d.get("insutype"), person.insurance_type, f"{field}.insutype")
    insured = call.envelope.get("insuplc_admdvs")
    if insured and insured != person.region:  # the HIS took it from 1101: another region's means another person's data
        raise InputError("insuplc_admdvs", "insuplc_mismatch", f"参保地医保区划与参保人不符（应为 {person.region}）",
                         f"is not the person's insured region ({person.region})")
    return person


@handles("2201")
def register(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    person = _person_for_visit(call, conn, d, "input.data")
    kind = "pharmacy" if call.institution.kind == "pharmacy" else "outpatient"
    if d.get("med_type") not in (None, ""):
        kind = codes.med_type_kind(d.get("med_type"), "input.data.med_type", allowed=("11", "12", "13", "41"))
    v = visits.open_visit(conn, call.now, institution=call.institution, person_id=person.id, kind=kind)
    return {"data": {"mdtrt_id": v.id, "psn_no": v.person_id, "ipt_otp_no": _text(d, "ipt_otp_no", "input.data", required=False) or v.id}}


@handles("2202", "2404")
def cancel_visit(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    v = _visit(call, conn, d, "input.data")
    if (call.infno == "2404") != (v.kind == "inpatient"):
        raise Conflict("input.data.mdtrt_id", "wrong_visit_kind", "2202 撤销门诊挂号，2404 撤销住院登记：该就诊类别不符",
                       "2202 cancels an outpatient registration, 2404 an admission: this visit is the other kind")
    visits.cancel_visit(conn, call.now, institution=call.institution, visit_id=v.id)
    return {}


@handles("2203")
def visit_info(call: Call, conn: Connection) -> dict[str, Any]:
    """The visit's information: checked against the visit (its person, its medical type). Diagnoses are not stored:
    nothing yibao prices depends on them yet."""
    d = _section(call, "mdtrtinfo")
    v = _visit(call, conn, d, "input.mdtrtinfo")
    if d.get("med_type") not in (None, ""):
        kind = codes.med_type_kind(d.get("med_type"), "input.mdtrtinfo.med_type", allowed=("11", "12", "13", "21", "41"))
        if kind != v.kind:
            raise InputError("input.mdtrtinfo.med_type", "med_type_mismatch", f"医疗类别与挂号不符（应为 {codes.MED_TYPE_OF_KIND[v.kind]}）",
                             f"is not the visit's ({codes.MED_TYPE_OF_KIND[v.kind]})")
    if v.status not in ("open", "admitted"):
        raise Conflict("input.mdtrtinfo.mdtrt_id", f"visit_{v.status}", "该就诊已结算或已撤销", f"the visit is {v.status}")
    diseinfo = call.input.get("diseinfo", [])
    if not isinstance(diseinfo, list):
        raise InputError("input.diseinfo", "invalid_list", "应为列表", "must be a list")
    return {}


# ---- fee lines: 2204 / 2301 upload, 2205 / 2302 revocation -----------------------------------------------

def _line_out(row: dict[str, Any]) -> dict[str, Any]:
    """The national per-line result (2204 / 2301): what the platform decided from the catalogue, and the line's split
    (the same view the REST upload answers: services/care/views.line_view), amounts as numbers."""
    v = views.line_view(row)

    def num(key: str) -> Number | None:
        return Number(v[key]) if v.get(key) is not None else None
    memo = v.get("memo") or ""
    if row["status"] != "active":
        memo = f"{row['status']} {memo}".strip()
    return {"feedetl_sn": v["feedetl_sn"], "med_list_codg": v.get("med_list_codg"), "medins_list_codg": v.get("medins_list_codg"),
            "medins_list_name": v["name"], "det_item_fee_sumamt": num("det_item_fee_sumamt"), "cnt": Number(v["cnt"]), "pric": num("pric"),
            "pric_uplmt_amt": num("pric_uplmt_amt"), "selfpay_prop": num("selfpay_prop"), "fulamt_ownpay_amt": num("fulamt_ownpay_amt"),
            "overlmt_amt": num("overlmt_amt"), "preselfpay_amt": num("preselfpay_amt"), "inscp_scp_amt": num("inscp_scp_amt"),
            "chrgitm_lv": v.get("chrgitm_lv"), "lmt_used_flag": v.get("lmt_used_flag"), "memo": memo}


@handles("2204", "2301")
def upload(call: Call, conn: Connection) -> dict[str, Any]:
    feedetail = call.input.get("feedetail")
    if not isinstance(feedetail, list) or not feedetail:
        raise InputError("input.feedetail", "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    first = _obj(feedetail[0], "input.feedetail[0]")
    v = _visit(call, conn, first, "input.feedetail[0]")
    if (call.infno == "2301") != (v.kind == "inpatient"):
        raise Conflict("input.feedetail[0].mdtrt_id", "wrong_visit_kind", "2204 上传门诊明细，2301 上传住院明细：该就诊类别不符",
                       "2204 uploads outpatient lines, 2301 inpatient ones: this visit is the other kind")
    for i, line in enumerate(feedetail):
        if _obj(line, f"input.feedetail[{i}]").get("mdtrt_id") not in (None, v.id):
            raise InputError(f"input.feedetail[{i}].mdtrt_id", "mixed_visits", "一次上传的明细须属于同一就诊", "every line of one upload must be of one visit")
    items = codes.fee_items(feedetail, "input.feedetail")
    rows = visits.upload_lines(conn, call.now, institution=call.institution, visit_id=v.id, items=items)
    sns = {item["feedetl_sn"] for item in items}  # after the service checked each serial is text (a list is no set member)
    return {"result": [_line_out(r) for r in rows if r["feedetl_sn"] in sns]}


@handles("2205", "2302")
def revoke(call: Call, conn: Connection) -> dict[str, Any]:
    """Revoke one line (`feedetl_sn`) or, with "0000" or none, every active line of the visit. [guess: the national 2205
    revokes by `chrg_bchno`; yibao keeps no batch number, so a line's serial or all]"""
    raw = call.input.get("data")
    entries = raw if isinstance(raw, list) else [_obj(raw, "input.data")]
    revoked: list[str] = []
    for i, entry in enumerate(entries):
        field = f"input.data[{i}]" if isinstance(raw, list) else "input.data"
        d = _obj(entry, field)
        v = _visit(call, conn, d, field)
        sn = _text(d, "feedetl_sn", field, required=False, max_length=30) or "0000"
        if sn == "0000":
            sns = [r["feedetl_sn"] for r in visits.list_lines(conn, call.institution.id, v.id) if r["status"] == "active"]
        else:
            sns = [sn]
        for one in sns:
            try:
                visits.revoke_line(conn, institution=call.institution, visit_id=v.id, feedetl_sn=one)
            except NotFound:
                raise NotFound(f"{field}.feedetl_sn", "not_found", f"明细 {one} 不存在或已撤销", f"line {one} not found or already revoked") from None
            revoked.append(one)
    return {"result": [{"feedetl_sn": sn} for sn in revoked]}


# ---- settlement: 2206/2207 outpatient, 2303/2304 inpatient, 2208/2305 cancel -----------------------------------

AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay",
           "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
           "psn_cash_pay", "hosp_part_amt", "balc", "acct_mulaid_pay")
CLR_TYPES = {"outpatient": "11", "emergency": "11", "inpatient": "21", "pharmacy": "41"}  # clr_type 清算类别 [guess]
# fund_pay_type codes of setldetail [guess: codes seen in public HIS code; the spec's dictionary was not available]
FUND_TYPES = (("hifp_pay", {"310": "310100", "390": "390100"}, "基本医疗保险统筹基金"),
              ("hifob_pay", {"310": "330100", "390": "330100"}, "职工大额医疗费用补助"),
              ("hifmi_pay", {"310": "390200", "390": "390200"}, "居民大病保险资金"),
              ("oth_pay", {"310": "999900", "390": "999900"}, "其他基金"),  # a policy's layer reported as oth_pay (issue 16)
              ("maf_pay", {"310": "610100", "390": "610100"}, "医疗救助基金"))


def setlinfo(doc: dict[str, Any], *, psn_setlway: str = "01") -> dict[str, Any]:
    """A settlement document (services/care/settlement.py; the REST answer) in national form: every amount a number
    with two decimals, codes the nation's, times Beijing's."""
    insutype = codes.insutype_of(doc.get("insutype", ""))
    out: dict[str, Any] = {"setl_id": doc.get("setl_id") or "", "mdtrt_id": doc.get("mdtrt_id"), "psn_no": doc.get("psn_no"),
                           "insutype": insutype, "med_type": codes.MED_TYPE_OF_KIND.get(doc.get("med_type", ""), doc.get("med_type")),
                           "psn_setlway": psn_setlway, "setl_time": _time(doc.get("setl_time")),
                           "insuplc_admdvs": doc.get("insuplc_admdvs"), "mdtrtarea_admvs": doc.get("mdtrtarea_admvs"),
                           "medins_setl_id": doc.get("msgid") or "", "clr_optins": doc.get("insuplc_admdvs"), "clr_way": "1",
                           "clr_type": CLR_TYPES.get(doc.get("med_type", ""), "11"),
                           "setl_stas": {"settled": "1", "cancelled": "0", "presettled": "P"}.get(doc.get("status", ""), doc.get("status"))}
    for key in AMOUNTS:
        text = doc.get(key, "0.00") if key != "hosp_part_amt" else "0.00"
        out[key] = Number(text) if text is not None else None
    out["pool_prop_selfpay"] = Number(doc["pool_prop_selfpay"]) if doc.get("pool_prop_selfpay") else None
    return out


def setldetail(doc: dict[str, Any]) -> list[dict[str, Any]]:
    insutype = codes.insutype_of(doc.get("insutype", ""))
    rows = []
    for key, by_type, name in FUND_TYPES:
        paid = parse_yuan(doc.get(key, "0.00"), key)
        if paid:
            rows.append({"fund_pay_type": by_type.get(insutype, by_type["310"]), "fund_pay_type_name": name,
                         "inscp_scp_amt": Number(doc.get("inscp_scp_amt", "0.00")), "crt_payb_lmt_amt": None,
                         "fund_payamt": amount(paid), "setl_proc_info": ""})
    return rows


def _time(iso: Any) -> str | None:
    if not iso:
        return None
    return inf_time(datetime.fromisoformat(iso))


def _settle_input(call: Call, conn: Connection, inpatient: bool) -> tuple[visits.Visit, AccountRequest, dict[str, Any]]:
    d = _section(call, "data")
    v = _visit(call, conn, d, "input.data")
    if inpatient != (v.kind == "inpatient"):
        raise Conflict("input.data.mdtrt_id", "wrong_visit_kind", "2206/2207 结算门诊，2303/2304 结算住院：该就诊类别不符",
                       "2206/2207 settle an outpatient visit, 2303/2304 an inpatient stay: this visit is the other kind")
    if d.get("med_type") not in (None, ""):
        kind = codes.med_type_kind(d.get("med_type"), "input.data.med_type", allowed=("11", "12", "13", "21", "41"))
        if kind != v.kind:
            raise InputError("input.data.med_type", "med_type_mismatch", f"医疗类别与就诊不符（应为 {codes.MED_TYPE_OF_KIND[v.kind]}）",
                             f"is not the visit's ({codes.MED_TYPE_OF_KIND[v.kind]})")
    codes.check_setlway(d.get("psn_setlway"), "input.data.psn_setlway")
    use = codes.account_flag(d.get("acct_used_flag"), "input.data.acct_used_flag")
    return v, AccountRequest(use=use), d


def _present_e_voucher(call: Call, conn: Connection, v: visits.Visit, d: dict[str, Any]) -> YibaoError | None:
    """An e-voucher shown as a dynamic payment code (01 + the code) is the holder's presence for this visit: used up as
    the REST scan (POST /his/paycodes/verify) uses it — unless a presence for this visit is live already (a 2206
    before this 2207 took it). Anything else presented is looked for among the presences recorded (card with PIN,
    face, the scan) by the settlement itself."""
    if d.get("mdtrt_cert_type") != "01" or not isinstance(d.get("mdtrt_cert_no"), str) or not codes.PAYCODE.match(d["mdtrt_cert_no"]):
        return None
    if presence.covered(conn, call.now, institution_id=call.institution.id, visit_id=v.id, owner_id=v.person_id) is not None:
        return None
    result = paycodes.consume(conn, call.keyring, call.now, code=d["mdtrt_cert_no"], institution=call.institution, actor=call.actor,
                              visit_id=v.id)
    return _renamed(result, "input.data.mdtrt_cert_no") if isinstance(result, YibaoError) else None


def _check_sum(doc: dict[str, Any], d: dict[str, Any]) -> None:
    """`medfee_sumamt` sent must be the visit's total as uploaded (预结算金额不匹配 is the HIS's most frequent mistake)."""
    sent = d.get("medfee_sumamt")
    if sent in (None, ""):
        return
    fen = parse_yuan(codes.yuan_text(sent, "input.data.medfee_sumamt"), "input.data.medfee_sumamt")
    if fen != parse_yuan(doc["medfee_sumamt"], "medfee_sumamt"):
        raise InputError("input.data.medfee_sumamt", "medfee_sumamt_mismatch", f"医疗费总额与已上传明细合计（{doc['medfee_sumamt']}）不符",
                         f"does not match the uploaded lines' total ({doc['medfee_sumamt']})")


def _settled(doc: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    return {"setlinfo": setlinfo(doc, psn_setlway=d.get("psn_setlway") or "01"), "setldetail": setldetail(doc)}


@handles("2206", "2303")
def presettle(call: Call, conn: Connection) -> dict[str, Any] | YibaoError:
    v, account, d = _settle_input(call, conn, call.infno == "2303")
    if account.use:
        refused = _present_e_voucher(call, conn, v, d)
        if refused is not None:
            return refused
    doc = settlement.presettle(conn, call.now, institution=call.institution, visit_id=v.id, account=account)
    _check_sum(doc, d)
    return _settled(doc, d)


@handles("2207", "2304")
def settle(call: Call, conn: Connection) -> dict[str, Any] | YibaoError:
    v, account, d = _settle_input(call, conn, call.infno == "2304")
    if account.use:
        refused = _present_e_voucher(call, conn, v, d)
        if refused is not None:
            return refused
    doc = settlement.settle(conn, call.now, institution=call.institution, visit_id=v.id, msgid=call.msgid, account=account, actor=call.actor)
    _check_sum(doc, d)  # a mismatch raises: the settlement is rolled back with the message's unit
    return _settled(doc, d)


@handles("2208", "2305")
def cancel(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    setl_id = _text(d, "setl_id", "input.data", max_length=30)
    assert setl_id is not None
    doc = _settlement(call, conn, setl_id, d)
    if (call.infno == "2305") != (doc.get("med_type") == "inpatient"):
        raise Conflict("input.data.setl_id", "wrong_visit_kind", "2208 撤销门诊结算，2305 撤销住院结算：该结算类别不符",
                       "2208 cancels an outpatient settlement, 2305 an inpatient one: this one is the other kind")
    doc = settlement.cancel(conn, call.now, institution=call.institution, setl_id=setl_id, actor=call.actor)
    return {"setlinfo": setlinfo(doc), "setldetail": setldetail(doc)}


def _settlement(call: Call, conn: Connection, setl_id: str, d: dict[str, Any]) -> dict[str, Any]:
    try:
        doc = settlement.get_settlement(conn, institution=call.institution, setl_id=setl_id)
    except NotFound:
        raise NotFound("input.data.setl_id", "not_found", "结算记录不存在", "settlement not found") from None
    for key in ("mdtrt_id", "psn_no"):
        if d.get(key) not in (None, "") and d.get(key) != doc.get(key):
            raise InputError(f"input.data.{key}", f"{key}_mismatch", "与该结算记录不符", "is not the settlement's")
    return doc


# ---- inpatient: 2401 admission, 2402 discharge, 2405 its undo ---------------------------------------------

@handles("2401")
def admit(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "mdtrtinfo")
    person = _person_for_visit(call, conn, d, "input.mdtrtinfo")
    codes.med_type_kind(d.get("med_type") or "21", "input.mdtrtinfo.med_type", allowed=("21",))
    v = visits.open_visit(conn, call.now, institution=call.institution, person_id=person.id, kind="inpatient")
    return {"result": {"mdtrt_id": v.id, "psn_no": v.person_id, "ipt_otp_no": _text(d, "ipt_no", "input.mdtrtinfo", required=False) or v.id}}


@handles("2402")
def discharge(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "dscginfo")
    v = _visit(call, conn, d, "input.dscginfo")
    visits.discharge(conn, call.now, institution=call.institution, visit_id=v.id)
    return {}


@handles("2405")
def undo_discharge(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    v = _visit(call, conn, d, "input.data")
    visits.undo_discharge(conn, call.now, institution=call.institution, visit_id=v.id)
    return {}


# ---- 2601 reversal ------------------------------------------------------------------------------------

REVERSIBLE = ("2207", "2304", "2401")


@handles("2601")
def reverse(call: Call, conn: Connection) -> dict[str, Any]:
    """Reverse what message `omsgid` did: a settlement (2207/2304) is reversed (services/care/settlement.reverse: a
    settlement that never arrived is refused if it arrives later); an admission (2401) is undone — the stay it opened,
    read from that message's stored answer."""
    d = _section(call, "data")
    omsgid = _text(d, "omsgid", "input.data", max_length=40)
    oinfno = d.get("oinfno")
    assert omsgid is not None
    if omsgid == call.msgid:  # this very message is not done yet: waiting for it would wait for ever
        raise InputError("input.data.omsgid", "own_msgid", "原报文ID不能是本报文ID", "must be another message's id, not this one's")
    if oinfno not in REVERSIBLE:
        raise InputError("input.data.oinfno", "not_reversible", "可冲正的原交易为 2207、2304、2401", "only 2207, 2304 and 2401 can be reversed")
    if oinfno == "2401":
        # As settlement.reverse does for a settlement: a message that has not arrived is closed, so that arriving late it
        # is refused (its digest is not this one) instead of opening a stay the HIS has written off.
        closed = idempotency.Key(f"fsi:{call.institution.id}", omsgid, REVERSED_BEFORE_ARRIVAL, call.institution.region,
                                 lambda: Conflict("omsgid", "msgid_reused", "该报文ID已用于另一笔交易", "this msgid was used for another request"))
        answer = idempotency.close(conn, closed, call.now, 409, _CLOSED)
        if answer is None or answer.body == _CLOSED:
            return {"data": {"omsgid": omsgid, "oinfno": oinfno, "mdtrt_id": None, "status": REVERSED_BEFORE_ARRIVAL}}
        output = _admission_output(answer)
        if output is None:
            raise NotFound("input.data.omsgid", "not_found", "未找到该报文ID的入院办理记录", "no admission was made by that message")
        visits.cancel_visit(conn, call.now, institution=call.institution, visit_id=output["mdtrt_id"])
        return {"data": {"omsgid": omsgid, "oinfno": oinfno, "mdtrt_id": output["mdtrt_id"], "status": "reversed"}}
    result = settlement.reverse(conn, call.now, institution=call.institution, omsgid=omsgid, oinfno=oinfno, actor=call.actor)
    return {"data": {"omsgid": omsgid, "oinfno": oinfno, "setl_id": result.get("setl_id"), "status": result["status"]}}


REVERSED_BEFORE_ARRIVAL = "reversed_before_arrival"
_CLOSED = json.dumps({"infcode": -1, "status": REVERSED_BEFORE_ARRIVAL})  # what a 2401 reversed before it arrived left


def _admission_output(answer: idempotency.Answer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    try:
        body = json.loads(answer.body)
        result = body["output"]["result"] if body.get("infcode") == 0 else None
    except (ValueError, KeyError, TypeError):
        return None
    return result if isinstance(result, dict) and "mdtrt_id" in result else None


# ---- queries: 5203 settlement, 5204 fee lines, 5206 the year's totals ------------------------------------

@handles("5203")
def query_settlement(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    setl_id = _text(d, "setl_id", "input.data", max_length=30)
    assert setl_id is not None
    doc = _settlement(call, conn, setl_id, d)
    return {"setlinfo": setlinfo(doc), "setldetail": setldetail(doc)}


@handles("5204")
def query_lines(call: Call, conn: Connection) -> dict[str, Any]:
    d = _section(call, "data")
    if d.get("setl_id") not in (None, ""):
        doc = _settlement(call, conn, _text(d, "setl_id", "input.data", max_length=30) or "", d)
        d = {**d, "mdtrt_id": doc["mdtrt_id"]}
    v = _visit(call, conn, d, "input.data")
    return {"feedetail": [_line_out(r) for r in visits.list_lines(conn, call.institution.id, v.id)]}


ACCUMULATORS = (("outpatient_deductible_used", "门诊起付线累计"), ("pool_fund_paid", "统筹基金支付累计"),
                ("outpatient_pool_paid", "门诊统筹支付累计"), ("inpatient_pool_paid", "住院统筹支付累计"),
                ("inpatient_eligible_used", "住院合规费用累计"), ("outpatient_eligible_used", "门诊合规费用累计"),
                ("serious_illness_paid", "大病保险支付累计"), ("large_amount_paid", "大额补助支付累计"),
                ("beyond_cap_paid", "大额封顶线以上支付累计"), ("assistance_paid", "医疗救助支付累计"))


@handles("5206")
def query_totals(call: Call, conn: Connection) -> dict[str, Any]:
    """The person's totals this year: settlement.year_totals, answered only with a visit here (`mdtrt_id`) its person has
    presented a credential for (the presence the settlement would use)."""
    d = _section(call, "data")
    v = _visit(call, conn, d, "input.data")
    cum_ym = d.get("cum_ym")
    if cum_ym in (None, ""):
        year = None
    elif isinstance(cum_ym, str) and len(cum_ym) == 6 and cum_ym.isdigit() and 1 <= int(cum_ym[4:]) <= 12:
        year = int(cum_ym[:4])  # the totals are kept per year: the month names its year
    else:
        raise InputError("input.data.cum_ym", "invalid_month", "累计年月应为 yyyyMM", "must be yyyyMM")
    try:
        acc = settlement.year_totals(conn, call.now, institution=call.institution, visit_id=v.id, year=year).as_dict()
    except YibaoError as exc:
        raise _renamed(exc, "input.data.mdtrt_id") from None
    return {"cuminfo": [{"year": str(year or v.visit_date.year), "cum_type_code": key, "cum_type_name": name, "cum": Number(format_yuan(acc[key]))}
                        for key, name in ACCUMULATORS]}
