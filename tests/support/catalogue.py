"""The tests' catalogue: a small one per region, with national-format codes, and every seed() institution's mapping of
the tests' old item codes (A001, XB01, C900, ...) to it. Each entry's class, cap and ratio is what the tests declared
on their lines before the platform decided them (docs/catalogue.md), so the expected amounts stay what they were.
Codes are in the national shapes (service items 15 digits, drugs X + 22, consumables C + 19) but INVENTED."""

from __future__ import annotations

from yibao.formats import catalogue_csv
from yibao.services.agency.institutions import Institution
from yibao.services.catalogue import mappings, versions
from yibao.store.db import Database

# code → (hilist_code, name, list_type, chrgitm_lv, extra columns)
SERVICE = "001102000010000"  # 诊查费 甲
SURGERY = "003310000030000"  # 阑尾切除术 甲
BED = "001106000010000"  # 住院床位费 甲
EXTRA = "001202000010000"  # 加项 甲
CEFIXIME = "XJ01DDC078A001010100483"  # 头孢克肟胶囊 乙, cap 10.00, prescription
IBUPROFEN = "XM01AEB045E001010100377"  # 布洛芬缓释胶囊 乙, its own ratio 0.05
SUPPLEMENT = "C1999999900000000900"  # 保健品 丙
NURSING = "C1404010000000000901"  # 护理用品 丙
OWN = "C1999999900000000001"  # 自费项目 丙
LEVEL2 = "XL01XCR113B001010100101"  # 限二级及以上: 乙
TWO_PER_VISIT = "XA02BCA025A001010100202"  # 每次就诊限2 (甲)
INPATIENT_ONLY = "002501000010000"  # 限住院 甲
CHILDREN = "XR05CBA056N001010100303"  # 限14岁及以下 乙
APPROVAL = "C0301010010010010001"  # 限医院审批 乙, cap 800.00 (a consumable)
NEXT_MONTH = "XN02BEA044A001010100404"  # from 2026-12-01
ENDED = "XN02BEA044A001010100405"  # until 2026-06-30
FUND = "003101000010000"  # 甲 with a fund-ratio override 0.80 (stored, not used yet)
ONE_A_DAY = "001106000020000"  # 监护床位费 甲, at most 1 a day

CSV = f"""hilist_code,hilist_name,list_type,chrgitm_lv,pric_uplmt_amt,selfpay_prop,fund_prop,lmt_med_type,lmt_medins_lv,lmt_cnt,lmt_age_min,lmt_age_max,hosp_appr_flag,rx_flag,begndate,enddate,lmt_cnt_day
{SERVICE},诊查费,201,01,,,,,,,,,0,0,2026-01-01,
{SURGERY},阑尾切除术,201,01,,,,,,,,,0,0,2026-01-01,
{BED},住院床位费,201,01,,,,,,,,,0,0,2026-01-01,
{EXTRA},加项,201,01,,,,,,,,,0,0,2026-01-01,
{CEFIXIME},头孢克肟胶囊,101,02,10.00,,,,,,,,0,1,2026-01-01,
{IBUPROFEN},布洛芬缓释胶囊,101,02,,0.05,,,,,,,0,0,2026-01-01,
{SUPPLEMENT},保健品,101,03,,,,,,,,,0,0,2026-01-01,
{NURSING},护理用品,301,03,,,,,,,,,0,0,2026-01-01,
{OWN},自费项目,301,03,,,,,,,,,0,0,2026-01-01,
{LEVEL2},利妥昔单抗注射液,101,02,,,,,level2,,,,0,1,2026-01-01,
{TWO_PER_VISIT},奥美拉唑肠溶胶囊,101,01,,,,,,2,,,0,0,2026-01-01,
{INPATIENT_ONLY},重症监护,201,01,,,,inpatient,,,,,0,0,2026-01-01,
{CHILDREN},小儿止咳糖浆,102,02,,,,,,,,14,0,0,2026-01-01,
{APPROVAL},人工晶体,301,02,800.00,,,,,,,,1,0,2026-01-01,
{NEXT_MONTH},新纳入药品,101,01,,,,,,,,,0,0,2026-12-01,
{ENDED},已退出药品,101,01,,,,,,,,,0,0,2026-01-01,2026-06-30
{FUND},高值检查,201,01,,,0.80,,,,,,0,0,2026-01-01,
{ONE_A_DAY},监护床位费,201,01,,,,,,,,,0,0,2026-01-01,,1
"""

# The institutions' own codes (what the tests' lines used to carry) mapped to national codes.
MAPPINGS = {"A001": SERVICE, "A010": SURGERY, "A002": BED, "A009": EXTRA, "XB01": CEFIXIME, "XB02": IBUPROFEN, "C900": SUPPLEMENT,
            "C901": NURSING, "C1": OWN}


def text(region: str, ver: str = "T1", begndate: str = "2026-01-01", body: str = CSV) -> str:
    return f"# ver: {region}-{ver}\n# insu_admdvs: {region}\n# begndate: {begndate}\n# note: TEST data\n{body}"


def load(db: Database, region: str, institutions: list[Institution]) -> None:
    """The region's test catalogue (idempotent) and each institution's mappings."""
    now = db.clock()
    file = catalogue_csv.parse(f"test-{region}.csv", text(region))
    db.run(lambda c: versions.import_file(c, now, file=file, actor="test"))
    items = [{"medins_list_codg": own, "med_list_codg": code} for own, code in MAPPINGS.items()]
    for inst in institutions:
        db.run(lambda c, inst=inst: mappings.put(c, now, institution=inst, items=items))
