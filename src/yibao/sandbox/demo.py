"""The demo world `yibao serve` loads into an empty database: three regions, their institutions,
admitted payment institutions, and a handful of insured people with cards, e-cards and family links.

Everything goes through the same services as the API (one write path); face templates are
enrolled through the real verifier client, talking to the sandbox verifier in-process over ASGI
with the same key the served sandbox uses, so real-person checks work once the server is up.
Demo credentials are fixed and printed; they are for a demo database only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain import clearing as clearing_rules
from yibao.domain import pilot as pilot_rules
from yibao.domain.errors import Conflict
from yibao.domain.identity import make_id_number
from yibao.domain.money import parse_yuan
from yibao.face import FaceVerifier
from yibao.runtime import marks
from yibao.sandbox import catalogue as demo_catalogue
from yibao.sandbox.face_samples import capture
from yibao.services.agency import gateway_credentials, institutions, payment_institutions, pilots
from yibao.services.books import audit, contributions
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.clearing import applications as clearing
from yibao.services.payments import paycodes
from yibao.services.people import account_credits, bindings, card_accounts, cards, families, filings, identity
from yibao.services.people import persons as people
from yibao.store.db import Database
from yibao.store.tables import institutions as INST

ACTOR = "demo:seed"
OPERATOR_TOKEN = "demo-operator-token"
REGIONS = {"440300": "深圳市", "370200": "青岛市", "330200": "宁波市"}
LEVEL_NAMES = {
    "community": ("hospital", "{city}莲花社区健康服务中心（演示）"),
    "level1": ("hospital", "{city}第二人民医院分院（演示）"),
    "level2": ("hospital", "{city}中西医结合医院（演示）"),
    "level3": ("hospital", "{city}第一人民医院（演示）"),
    "pharmacy": ("pharmacy", "{city}健民大药房（演示）"),
}
LEVEL_CODES = {"community": "C1", "level1": "L1", "level2": "L2", "level3": "L3", "pharmacy": "P1"}
WALLETS = (("wechat", "微信支付（沙箱）", "wallet"), ("alipay", "支付宝（沙箱）", "wallet"),
           ("unionpay", "云闪付（沙箱）", "wallet"), ("bank", "医保信用银行（沙箱）", "bank"))


@dataclass(frozen=True)
class DemoPerson:
    key: str
    name: str
    region: str
    born: date
    area: str
    serial: int
    insurance_type: str
    employment: str = "employed"
    tier: int | None = None
    phone: str | None = None
    balance: int = 0  # fen
    hardship: str | None = None
    role_zh: str = ""
    role_en: str = ""


PEOPLE = (
    DemoPerson("guardian", "李明", "440300", date(1986, 4, 12), "440304", 11, "employee", tier=1, phone="13800138001", balance=620000,
               role_zh="在职职工，监护人（账户余额高于¥5008.80），已绑定信用银行（沙箱）",
               role_en="employed, the child's guardian (balance above ¥5008.80), bound to the sandbox credit bank"),
    DemoPerson("child", "李小雨", "440300", date(2020, 6, 1), "440304", 22, "child",
               role_zh="少儿医保，李明的孩子", role_en="insured child of 李明"),
    DemoPerson("spouse", "王芳", "440300", date(1988, 9, 30), "440305", 32, "employee", tier=2, phone="13800138005",
               role_zh="职工二档（无个人账户），李明授权家庭共济", role_en="employee tier 2 (no account); 李明 shares his account"),
    DemoPerson("retiree", "张建国", "370200", date(1958, 9, 20), "370202", 15, "employee", employment="retired", phone="13800138002",
               balance=480000, role_zh="退休职工", role_en="retired employee"),
    DemoPerson("resident", "陈静", "330200", date(1979, 11, 3), "330203", 27, "resident", employment="none", phone="13800138003",
               hardship="dibao", role_zh="居民医保，低保对象；社保卡在制（待上传照片），用电子社保卡支付",
               role_en="resident, minimum-living-allowance recipient; her card is being made (photo awaited), she pays with the e-card"),
    DemoPerson("cross_region", "赵磊", "330200", date(1972, 2, 14), "330204", 33, "employee", phone="13800138004", balance=250000,
               role_zh="宁波职工，长期异地备案在深圳", role_en="Ningbo employee with a long-term filing in Shenzhen"),
)


CARD_IN_PRODUCTION = ("resident",)  # her first financial card was just applied for; she pays with the e-card meanwhile
CREDIT_HOLDERS = ("guardian",)  # bound to their region's sandbox credit bank (信用支付)
CREDIT_BANKS = tuple(f"bank-{region}" for region in REGIONS)  # each region's bank: the SANDBOX bank as its credit bank

# The books' history (issue 15's trial: "the demo has nothing to reconcile or clear"): the demo world has existed since the
# first day of the month before its first start; counter visits settled on days of that month, which has ended, so its
# level-3 hospital in Shenzhen has applied (3203) for the month's outpatient clearing and waits for the operator's review.
# (holder, institution level and region, day of the month, account used, fee lines)
HISTORY = (
    ("spouse", ("440300", "level3"), 3, False,
     [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
      {"feedetl_sn": "2", "medins_list_codg": "A310", "name": "血常规检查", "unit_price": "22.00", "quantity": "1"},
      {"feedetl_sn": "3", "medins_list_codg": "XA11", "name": "阿莫西林胶囊", "unit_price": "18.60", "quantity": "2", "prescription": True,
       "prescriber": "演示医师"}]),
    ("cross_region", ("440300", "level3"), 10, True,
     [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
      {"feedetl_sn": "2", "medins_list_codg": "A520", "name": "CT检查（平扫）", "unit_price": "360.00", "quantity": "1"}]),
    ("spouse", ("440300", "level3"), 17, False,
     [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
      {"feedetl_sn": "2", "medins_list_codg": "XB21", "name": "布洛芬缓释胶囊", "unit_price": "28.50", "quantity": "1", "prescription": True,
       "prescriber": "演示医师"}]),
    ("retiree", ("370200", "level3"), 12, True,
     [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
      {"feedetl_sn": "2", "medins_list_codg": "A310", "name": "血常规检查", "unit_price": "22.00", "quantity": "1"},
      {"feedetl_sn": "3", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True,
       "prescriber": "演示医师"}]),
)
CLEARING_APPLICANT = ("440300", "level3")  # applied for the ended month's outpatient (11) clearing; its payee account is recorded
CLEARING_PAYEE = ("6222020000440300036", "深圳市第一人民医院（演示）")  # a DEMO account number (passes the sandbox bank's Luhn check)
CARD_ACCOUNT = ("retiree", "bank-370200", "6228480000370200156")  # 张建国's card account at his region's (sandbox) bank: DEMO number


@dataclass
class DemoGuide:
    operator_token: str = OPERATOR_TOKEN
    institutions: list[dict[str, str]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    clearing: list[dict[str, Any]] = field(default_factory=list)  # applications of the demo's hospitals waiting for review
    card_accounts: list[dict[str, str]] = field(default_factory=list)  # holders whose financial card has a recorded bank account


def institution_code(region: str, level: str) -> str:
    return f"{'P' if level == 'pharmacy' else 'H'}{region}{LEVEL_CODES[level]}"


def institution_secret(code: str) -> str:
    return f"demo-{code.lower()}"


def fsi_token(code: str) -> str:
    """The demo institution's national-interface gateway token (services/agency/gateway_credentials.py)."""
    return f"demo-fsi-{code.lower()}"


def card_number(p: DemoPerson) -> str:
    """Demo card numbers are fixed, so a hospital can look people up from the printed guide."""
    return f"D{p.region}{p.serial:05d}"


def _verifier() -> FaceVerifier:
    from yibao.sandbox.face import create_app as sandbox
    from yibao.sandbox.face import face_key

    key = face_key()
    return FaceVerifier("http://face-sandbox", key, transport=httpx.ASGITransport(app=sandbox(key)))


def _guide(db: Database, keyring: Keyring, created: bool) -> DemoGuide:
    def read(conn: Connection) -> DemoGuide:
        guide = DemoGuide(created=created)
        for region, city in REGIONS.items():
            for level in LEVEL_CODES:
                code = institution_code(region, level)
                inst = institutions.get(conn, code)
                if inst is not None:
                    guide.institutions.append({"region": f"{region} {city}", "level": level, "name": inst.name,
                                               "credential": f"{code}.{institution_secret(code)}",
                                               "fsi_token": fsi_token(code)})
        for p in PEOPLE:
            number = make_id_number(p.area, p.born, p.serial)
            person = people.find_by_id_number(conn, keyring, number)
            if person is not None:
                guide.people.append({"name": p.name, "psn_no": person.id, "phone": p.phone, "region": p.region, "card_no": card_number(p),
                                     "role_zh": p.role_zh, "role_en": p.role_en})
                account = card_accounts.financial_account(conn, person.id)
                if account is not None:
                    guide.card_accounts.append({"name": p.name, "psn_no": person.id, "region": p.region, "bank": account.bank_id,
                                                "account": f"****{account.account_last4}"})
        for region, level in (CLEARING_APPLICANT,):
            guide.clearing += clearing.listing(conn, institution_id=institution_code(region, level), status=clearing_rules.APPLIED)
        return guide

    return db.run(read, write=False)


def not_the_demos() -> Conflict:
    return Conflict("database", "not_a_demo_database",
                    "该数据库已有数据且不是演示创建的：演示模式会以公开的演示凭证和沙箱接管它，因此拒绝。演示请用空数据库（--database），"
                    "或去掉 --demo 以生产模式运行",
                    "this database holds data the demo did not create: demo mode would open it to the public demo credentials and "
                    "the sandboxes, so it refuses. Give the demo an empty database (--database), or run production without --demo")


def _claim(conn: Connection, now: datetime) -> None:
    """The database is the demo's: marked so before, or empty and marked now (refused otherwise)."""
    if marks.is_demo(conn):
        return
    if not marks.is_empty(conn):
        raise not_the_demos()
    marks.put_new(conn, now, marks.DEMO_WORLD, "loaded")


def ensure(db: Database, keyring: Keyring) -> DemoGuide:
    """Load the demo world unless it is there already; return what a visitor needs to try it. Only into a
    database the demo marked as its own, or an empty one (marked first): a `Conflict` on any other."""
    audit.use_key(db, keyring)
    db.run(lambda c: _claim(c, db.clock()))
    exists = db.run(lambda c: c.execute(select(INST.c.id).where(INST.c.id == institution_code("440300", "level3"))).first(), write=False)
    if exists is None:
        _seed(db, keyring)
    return _guide(db, keyring, created=exists is None)


def previous_month(now: datetime) -> clearing_rules.Month:
    """The month before ``now``'s (Beijing time): the demo's history is in it, and it has ended."""
    first = now.astimezone(clearing_rules.CHINA).date().replace(day=1)
    before = first - timedelta(days=1)
    return clearing_rules.Month(before.year, before.month)


def _at(month: clearing_rules.Month, day: int, hour: int) -> datetime:
    return datetime.combine(month.first_day.replace(day=day), time(hour), clearing_rules.CHINA).astimezone(timezone.utc)


def _seed(db: Database, keyring: Keyring) -> None:
    today = db.clock()
    history = previous_month(today)
    # The world existed before its books' history: made on the first morning of the previous month, through the same services,
    # each told that time (the services take `now`; none reads the wall clock). The visit of today and the application are today's.
    now = _at(history, 1, 9)
    for region, city in REGIONS.items():
        def admit(conn: Connection, region: str = region, city: str = city) -> None:
            for level, (kind, name) in LEVEL_NAMES.items():
                code = institution_code(region, level)
                institutions.admit(conn, now, code=code, region=region, name=name.format(city=city), kind=kind, level=level,
                                   actor=ACTOR, secret=institution_secret(code))
                gateway_credentials.issue(conn, keyring, now, institution_id=code, actor=ACTOR, token=fsi_token(code))
                # DEMO: every demo institution is a pilot for every mode (an agreement recorded, no application behind it)
                pilots.record_signed(conn, now, institution_id=code, modes=pilot_rules.MODES, actor=ACTOR)
            for pi, name, kind in WALLETS:
                payment_institutions.admit(conn, now, pi_id=f"{pi}-{region}", region=region, name=name, kind=kind,
                                           admission_ref=f"{city}医保局准入〔2026〕演示", actor=ACTOR)
        db.run(admit)

    # The agency's catalogue for each region (DEMO data) and every demo institution's mapping of its own item codes to it:
    # the platform decides each fee line's class, cap and ratio from them.
    def catalogue(conn: Connection) -> None:
        demo_catalogue.load(conn, now, [institutions.get(conn, institution_code(region, level)) for region in REGIONS
                                        for level in LEVEL_NAMES], actor=ACTOR)
    db.run(catalogue)

    # The opening balances are credited from contributions collected first, as every credit is (never minted).
    for region in REGIONS:
        opening = sum(p.balance for p in PEOPLE if p.region == region)
        if opening:
            db.run(lambda conn, region=region, opening=opening: contributions.record_collection(
                conn, now, region=region, amount=opening, reference=f"demo:opening:{region}", actor=ACTOR))

    ids: dict[str, str] = {}
    for p in PEOPLE:
        guardian = ids.get("guardian") if p.insurance_type == "child" else None

        def enrol(conn: Connection, p: DemoPerson = p, guardian: str | None = guardian) -> str:
            person = people.enrol(conn, keyring, now, region=p.region, id_number=make_id_number(p.area, p.born, p.serial), name=p.name,
                                  insurance_type=p.insurance_type, employment_status=p.employment, tier=p.tier, phone=p.phone,
                                  hardship=p.hardship, guardian_id=guardian, actor=ACTOR)
            if p.balance:
                account_credits.credit_account(conn, now, person_id=person.id, amount=p.balance, client_id=f"demo:opening:{person.id}",
                                               actor=ACTOR)
            card = cards.create_physical(conn, keyring, now, person_id=person.id, financial=True, actor=ACTOR,
                                         card_no=card_number(p))
            if p.key in CARD_IN_PRODUCTION:  # accepted, waiting for the holder's photo: 卡服务 shows the upload
                return person.id
            for stage in ("printing", "mailed", "ready"):
                cards.advance_production(conn, now, card_id=card.id, stage=stage, actor=ACTOR)
            cards.issue(conn, now, card_id=card.id, actor=ACTOR)
            cards.activate(conn, now, card_id=card.id, holder_id=person.id, actor=ACTOR)
            return person.id

        ids[p.key] = db.run(enrol)

    # Real-name and real-person authentication, then e-cards and a default payment institution, for the adults.
    verifier = _verifier()
    for p in PEOPLE:
        if p.phone is None:
            continue
        pid = ids[p.key]
        template = asyncio.run(verifier.enrol(capture(p.name)))
        check = asyncio.run(verifier.verify(template, capture(p.name, day=1), {"method": "structured_light", "score": 0.98}))

        def authenticate(conn: Connection, p: DemoPerson = p, pid: str = pid) -> None:
            identity.enrol_face(conn, keyring, now, person_id=pid, template_id=template, actor=ACTOR)
            identity.real_name(conn, keyring, now, person_id=pid, name=p.name, id_number=make_id_number(p.area, p.born, p.serial), actor=ACTOR)
            identity.record_real_person(conn, keyring, now, person_id=pid, template_id=template, match=check.match, liveness=check.liveness,
                                        similarity=check.similarity, actor=ACTOR)
            cards.issue_ecard(conn, keyring, now, person_id=pid, actor=ACTOR)
            bindings.bind(conn, now, holder_id=pid, pi_id=f"wechat-{p.region}", password_free_limit=100000, make_default=True, connector_later=True,
                                      actor=ACTOR)
            if p.key in CREDIT_HOLDERS:  # the e-card bound to the sandbox credit bank: he can enrol in 信用支付 in the app
                bindings.bind(conn, now, holder_id=pid, pi_id=f"bank-{p.region}", password_free_limit=100000, actor=ACTOR, connector_later=True)
        db.run(authenticate)

    def family(conn: Connection) -> None:
        child = next(p for p in PEOPLE if p.key == "child")
        families.link_child_card(conn, keyring, now, guardian_id=ids["guardian"], card_no=card_number(child),
                                 child_name=child.name, actor=ACTOR)
        families.link_family_account(conn, now, guardian_id=ids["guardian"], child_id=ids["child"], actor=ACTOR)
        spouse = next(p for p in PEOPLE if p.key == "spouse")
        families.grant_mutual_aid(conn, keyring, now, holder_id=ids["guardian"], relation="spouse",
                                  id_number=make_id_number(spouse.area, spouse.born, spouse.serial), name=spouse.name, actor=ACTOR)
        filings.file(conn, now, person_id=ids["cross_region"], treatment_region="440300", filing_type="long_term",
                     valid_from=date(now.year, 1, 1), valid_to=None, actor=ACTOR)
    db.run(family)

    # One settled visit, so the guardian's transactions and statement are not empty.
    hospital = db.run(lambda c: institutions.get(c, institution_code("440300", "level3")), write=False)
    assert hospital is not None
    lines = [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
             {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "演示医师"}]

    settled = _history(db, keyring, ids, history)

    def first_visit(conn: Connection) -> None:
        v = visits.open_visit(conn, today, institution=hospital, person_id=ids["guardian"], kind="outpatient")
        visits.upload_lines(conn, today, institution=hospital, visit_id=v.id, items=lines)
        # He showed his payment code at the counter for this visit: his presence, which the settlement with his account uses.
        code = paycodes.issue(conn, keyring, today, holder_id=ids["guardian"], actor=ACTOR).code
        paycodes.unwrap(paycodes.consume(conn, keyring, today, code=code, institution=hospital, terminal_id="DEMO", actor=ACTOR,
                                         visit_id=v.id))
        settlement.settle(conn, today, institution=hospital, visit_id=v.id, msgid=f"DEMO{v.id}", account=AccountRequest(use=True),
                          actor=ACTOR)
    db.run(first_visit)
    _apply_for_clearing(db, today, history, settled)


def _history(db: Database, keyring: Keyring, ids: dict[str, str], month: clearing_rules.Month) -> dict[str, list[dict[str, Any]]]:
    """The previous month's counter visits (HISTORY), each settled on its day; and 张建国's card account, recorded when his
    card was made (so an agency's subsidy batch can be paid onto it: docs/benefits.md). Returns each institution's settlement
    documents, as its HIS keeps them."""
    settled: dict[str, list[dict[str, Any]]] = {}
    for key, (region, level), day, use_account, lines in sorted(HISTORY, key=lambda h: h[2]):  # on their days, in order
        when = _at(month, day, 10)

        def visit(conn: Connection, key: str = key, code: str = institution_code(region, level), use_account: bool = use_account,
                  lines: list[dict[str, Any]] = lines, when: datetime = when) -> dict[str, Any]:
            hospital = institutions.get(conn, code)
            v = visits.open_visit(conn, when, institution=hospital, person_id=ids[key], kind="outpatient")
            visits.upload_lines(conn, when, institution=hospital, visit_id=v.id, items=lines)
            if use_account:  # the holder's code scanned at the counter for the visit: the presence his account's debit needs
                code_ = paycodes.issue(conn, keyring, when, holder_id=ids[key], actor=ACTOR).code
                paycodes.unwrap(paycodes.consume(conn, keyring, when, code=code_, institution=hospital, terminal_id="DEMO", actor=ACTOR,
                                                 visit_id=v.id))
            return settlement.settle(conn, when, institution=hospital, visit_id=v.id, msgid=f"DEMO{v.id}",
                                     account=AccountRequest(use=use_account), actor=ACTOR)
        settled.setdefault(institution_code(region, level), []).append(db.run(visit))

    key, bank, account_no = CARD_ACCOUNT

    def card_account(conn: Connection) -> None:
        card = next(c for c in cards.for_person(conn, ids[key]) if c.kind == "physical" and c.financial)
        card_accounts.record(conn, keyring, _at(month, 1, 9), card_id=card.id, bank_id=bank, account_no=account_no, actor=ACTOR)
    db.run(card_account)
    return settled


def _apply_for_clearing(db: Database, now: datetime, month: clearing_rules.Month, settled: dict[str, list[dict[str, Any]]]) -> None:
    """The hospital applies (3203) for the ended month's outpatient clearing with the totals of its own settlements (what the
    platform answered each), as its HIS would; the agency has its payee account. The operator reviews, approves and pays it
    on /admin/clearing (through the SANDBOX bank)."""
    region, level = CLEARING_APPLICANT
    code = institution_code(region, level)
    account_no, account_name = CLEARING_PAYEE
    docs = settled[code]

    def apply(conn: Connection) -> None:
        hospital = institutions.get(conn, code)
        total = {k: sum(parse_yuan(d[k]) for d in docs) for k in ("medfee_sumamt", "inscp_scp_amt", "fund_pay_sumamt", "acct_pay",
                                                                   "psn_cash_pay")}
        clearing.set_payee(conn, now, institution_id=code, account_no=account_no, account_name=account_name, actor=ACTOR)
        clearing.apply(conn, now, institution=hospital, clr_type="11", clr_way="1", setlym=month.setlym, psntime=len(docs),
                       medfee_sumamt=total["medfee_sumamt"], med_sumfee=total["inscp_scp_amt"], fund_appy_sum=total["fund_pay_sumamt"],
                       cash_payamt=total["psn_cash_pay"], acct_pay=total["acct_pay"], begndate=month.first_day, enddate=month.last_day,
                       actor=f"his:{code}")
    db.run(apply)


def print_guide(guide: DemoGuide, base_url: str, console: Any) -> None:
    from rich.table import Table

    console.rule("[bold]yibao 医保 demo 演示")
    console.print("已载入演示数据 Demo data loaded." if guide.created else "演示数据已存在 Demo data already present.", highlight=False)
    console.print(f"页面 Pages: {base_url}/app (参保人 holder) · {base_url}/cashier (收费员 cashier) · {base_url}/admin (经办 agency)",
                  highlight=False)
    console.print(f"API 文档 OpenAPI: {base_url}/docs", highlight=False)
    console.print(f"经办人员 Operator: Authorization: Bearer {guide.operator_token}", highlight=False)
    inst = Table(title="定点机构 Institutions (HIS: Authorization: Bearer <credential>; national interface: yibao fsi call … "
                       "--institution <code> --secret <fsi_token>, docs/fsi.md)", title_justify="left")
    for col in ("region", "level", "name", "credential", "fsi_token"):
        inst.add_column(col, no_wrap=col in ("credential", "fsi_token"), overflow="fold")  # copied whole into a HIS
    for row in guide.institutions:
        inst.add_row(row["region"], row["level"], row["name"], row["credential"], row["fsi_token"])
    console.print(inst)
    ppl = Table(title="参保人 Insured people (log in: POST /api/v1/patient/sms-codes, then /sessions)", title_justify="left")
    for col in ("name", "psn_no", "card", "phone", "role"):
        ppl.add_column(col, no_wrap=col in ("psn_no", "card", "phone"), overflow="fold")
    for row in guide.people:
        ppl.add_row(row["name"], row["psn_no"], row["card_no"], row["phone"] or "—", f"{row['role_zh']} / {row['role_en']}")
    console.print(ppl)
    console.print("沙箱短信验证码 SMS codes (sandbox): the SANDBOX SMS gateway keeps what it sent — "
                  f"{base_url}/sandbox/sms/outbox, or GET {base_url}/sandbox/sms/messages?phone=… (the platform keeps no text).",
                  highlight=False)
    for app in guide.clearing:  # the books' history: an ended month waiting for the agency
        month = clearing_rules.parse_month(app["setlym"])
        console.print(f"清算 Clearing: {app['fixmedins_code']} 已申请 {month} 门诊清算 applied for {month}'s outpatient clearing "
                      f"({app['clr_appy_evt_id']}, {app['psntime']} 人次 settlements, 基金 fund ¥{app['fund_appy_sum']}, "
                      f"个人账户 account ¥{app['acct_pay']}): 审核、受理、拨付 review, approve and pay it at "
                      f"{base_url}/admin/clearing?month={app['setlym']}", highlight=False)
    for row in guide.card_accounts:
        batch = json.dumps({"region": row["region"], "agency": "民政局（演示）", "batch_no": "DEMO-0001", "purpose": "高龄津贴",
                            "rows": [{"psn_no": row["psn_no"], "amount": "300.00"}]}, ensure_ascii=False)
        console.print(f"待遇到卡 Benefits: {row['name']} 的社保卡已登记银行账户 {row['name']}'s card has an account at {row['bank']} "
                      f"({row['account']}): POST {base_url}/api/v1/admin/benefit-batches '{batch}', then POST …/benefit-batches/"
                      "{batch_id}/submit: the SANDBOX bank credits it (docs/benefits.md)", highlight=False)


SANDBOX_OF = {"wechat": "wxpay", "alipay": "alipay", "unionpay": "unionpay", "bank": "bank"}


def _channel_mark(pi_id: str) -> str:
    return f"demo_channel:{pi_id}"


def configure_sandbox_channels(db: Database, keyring: Keyring, pairs: dict[str, Any], base_url: str, *,
                               timeout_s: float = 5.0) -> None:
    """Point the demo's admitted payment institutions (credit banks included) at the SANDBOX institutions mounted in this process.

    The sandboxes' keys and books are made afresh at each start, so each configuration is written
    again and the agreements signed on the previous process's sandbox pages are told to the new sandboxes
    (`_restore_agreements`). Only in the demo's database, and never over a configuration the demo did
    not write: each one it writes is marked with its version, and one changed since (an operator's, or a
    real institution's) is left alone, as is any not pointing at a sandbox. Nothing happens when the
    database is not the demo's.
    """
    from yibao.services.agency import connectors as channel_registry

    if not db.run(marks.is_demo, write=False):
        return
    now = db.clock()
    if "wxpay" in pairs:  # its medical-insurance orders ask the platform as the first region's WeChat Pay (one sandbox for all)
        pairs["wxpay"].app.state.wxpay_med_ins.platform_url = f"{base_url}/api/v1/channels/wechat-{next(iter(REGIONS))}/med-ins"
    if "alipay" in pairs:  # Alipay's medical-insurance trades likewise, as the first region's Alipay
        pairs["alipay"].app.state.alipay_med_ins.platform_url = f"{base_url}/api/v1/channels/alipay-{next(iter(REGIONS))}/med-ins"
    for region in REGIONS:
        for wallet, _, _ in WALLETS:
            pi_id, name = f"{wallet}-{region}", SANDBOX_OF[wallet]
            if name not in pairs:
                continue
            connector = pairs[name].connector(f"{base_url}/sandbox/{name}", notify_url=f"{base_url}/api/v1/channels/{pi_id}/notify",
                                              timeout=timeout_s)

            def configure(conn: Connection, pi_id: str = pi_id, name: str = name, connector: Any = connector) -> None:
                pi = payment_institutions.get(conn, pi_id)
                if pi is None or pi.status != "admitted":
                    return
                current = channel_registry.get(conn, pi_id)
                if current is not None:
                    written = marks.get(conn, _channel_mark(pi_id))
                    if written != str(current.version) or not current.base_url.endswith(f"/sandbox/{name}"):
                        return  # configured by someone else since: never re-pointed
                done = channel_registry.configure(conn, keyring, now, pi_id=pi_id, actor=ACTOR, **channel_registry.settings_of(connector))
                marks.put(conn, now, _channel_mark(pi_id), str(done["version"]))
                if name != "bank":
                    _restore_agreements(conn, keyring, now, pi_id, pairs[name].runtime.books)
            db.run(configure)


def _restore_agreements(conn: Connection, keyring: Keyring, now: datetime, pi_id: str, books: Any) -> None:
    """The SANDBOX institution made afresh at this start stands in for one that keeps its books (as the credit bank
    does, `restore_sandbox_credit`): the agreements holders signed on its page before are told to it again. The demo's
    own holders bound to it who have none yet sign it now on its books — the demo plays them confirming on the page at
    the demo's first start — and the platform records what the institution holds, as its query would answer."""
    from yibao.sandbox.channels.core import AgreementRec
    from yibao.services.payments import agreements
    from yibao.store.tables import cards as CARDS
    from yibao.store.tables import channel_agreements as AG
    from yibao.store.tables import ecard_bindings as B

    for r in conn.execute(select(AG).where(AG.c.payment_institution_id == pi_id, AG.c.status == "active")).all():
        token = agreements.token_for(keyring, r.person_id, pi_id)
        books.agreements[r.out_agreement_no] = AgreementRec(r.out_agreement_no, r.agreement_no, token, int(r.limit_fen), "active", now)
    signed = set(conn.execute(select(AG.c.person_id).where(AG.c.payment_institution_id == pi_id)).scalars())
    bound = conn.execute(select(CARDS.c.person_id).join(B, B.c.card_id == CARDS.c.id)
                         .where(B.c.payment_institution_id == pi_id, B.c.status == "bound", CARDS.c.kind == "ecard",
                                CARDS.c.status == "active")).scalars().all()
    for person_id in sorted(set(bound) - signed):
        row, _ = agreements.open_pending(conn, keyring, now, holder_id=person_id, pi_id=pi_id, actor=ACTOR)
        rec = books.sign_agreement(row.out_agreement_no, agreements.token_for(keyring, person_id, pi_id), row.limit_fen)
        agreements.activate(conn, now, pi_id=pi_id, out_no=row.out_agreement_no, agreement_no=rec.agreement_no, actor=ACTOR)


def restore_sandbox_credit(db: Database, keyring: Keyring, pairs: dict[str, Any]) -> int:
    """Give the SANDBOX bank made afresh at this start the demo's credit lines and bills from the database.

    Unlike a payment agreement (forgotten, then signed again at the next payment), a credit line cannot be
    signed again without the holder's consent, and its bills are owed: the sandbox stands in for a bank that
    keeps its books, so it is told them again (in the demo's database only). Returns how many lines were restored."""
    if "bank" not in pairs or not db.run(marks.is_demo, write=False):
        return 0
    from datetime import datetime, time, timezone

    from yibao.sandbox.channels import bank as sandbox_bank
    from yibao.services.credit import lines as credit

    rows, bills = db.run(lambda c: credit.lines_at(c, CREDIT_BANKS), write=False)
    books = pairs["bank"].runtime.books
    for r in rows:
        token = credit.token_for(keyring, r.person_id, r.payment_institution_id)
        line = sandbox_bank.Line(r.agreement_no, r.score or sandbox_bank.score_of(token), r.bank_limit or r.limit_fen)
        own = [(sandbox_bank.Bill(b.bill_no, b.order_ref, r.agreement_no, b.bank_due_date, b.repaid), b.amount,
                datetime.combine(b.paid_on, time(4, 0), tzinfo=timezone.utc)) for b in bills if b.enrolment_id == r.id]  # noon in Beijing
        books.restore(line, out_agreement_no=r.id, holder_token=token, single_limit=r.single_limit, bills=own)
    return len(rows)
