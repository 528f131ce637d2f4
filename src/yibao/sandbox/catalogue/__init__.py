"""The DEMO catalogue (catalogue-<region>.csv, written by generate.py) and the demo institutions' mappings to it.
DEMO data: invented entries in the national code shapes — never load it into a real platform."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from yibao.formats import catalogue_csv
from yibao.services.agency.institutions import Institution
from yibao.services.catalogue import mappings, versions

HERE = Path(__file__).parent
REGIONS = ("440300", "370200", "330200")
VERSION = "2026.1"
BEGNDATE = date(2026, 1, 1)
NOTE = "DEMO data — invented entries for the yibao demo, NOT a real medical-insurance catalogue"

# The entries the demo's hospitals map their own codes to (mappings below) — fixed, so the demo's amounts are known:
# (hospital code, hilist_code, name, list_type, chrgitm_lv, cap yuan, own ratio, rx).
MAPPED = (
    ("A001", "001102000010000", "普通门诊诊查费", "201", "01", "", "", "0"),
    ("A201", "001102000020000", "儿科门诊诊查费", "201", "01", "", "", "0"),
    ("A310", "250101015000000", "血常规检查", "201", "01", "", "", "0"),
    ("A520", "210300001000000", "CT检查（平扫）", "201", "01", "", "", "0"),
    ("XB01", "XJ01DDC078A001010100483", "头孢克肟胶囊", "101", "02", "10.00", "", "1"),
    ("XA11", "XJ01CAA040A001010100217", "阿莫西林胶囊", "101", "01", "", "", "1"),
    ("XB21", "XM01AEB045E001010100377", "布洛芬缓释胶囊", "101", "02", "", "", "0"),
    ("C900", "C1999999900000000900", "医用护肤品", "301", "03", "", "", "0"),
    ("C901", "C1404010000000000901", "护理用品", "301", "03", "", "", "0"),
    ("C120", "XA11GAV001T001010100120", "维生素C泡腾片", "101", "03", "", "", "0"),
    ("A003", "001107000020000", "护理费（二级护理）", "201", "01", "", "", "0"),  # the cashier's inpatient sample day (with A002)
    # the items of the example bills in examples/ (yibao quote), with the classes, caps and ratios the bills state
    ("A002", "001106000010000", "床位费", "201", "01", "", "", "0"),
    ("A010", "003310000030000", "阑尾切除术", "201", "01", "", "", "0"),
    ("A300", "003313000050000", "髋关节置换术", "201", "01", "", "", "0"),
    ("A500", "003207000080000", "冠状动脉支架植入术", "201", "01", "", "", "0"),
    ("B220", "C0405010010010010220", "一次性吻合器", "301", "02", "1500.00", "", "0"),
    ("B510", "C0201010010010010510", "药物洗脱支架", "301", "02", "", "0.20", "0"),
    ("C910", "001106000030000", "单人病房差价", "201", "03", "", "", "0"),
    ("XB33", "XR05XAA033N001010100033", "小儿氨酚黄那敏颗粒", "101", "02", "", "", "0"),
    ("XB77", "C0307010010010010077", "人工髋关节假体", "301", "02", "20000.00", "", "0"),
)



def files() -> list[Path]:
    return [HERE / f"catalogue-{region}.csv" for region in REGIONS]


def load(conn: Connection, now: datetime, institutions: list[Institution], actor: str) -> None:
    """Import the three regions' demo catalogues (idempotent) and map the demo's own item codes at every institution."""
    for path in files():
        versions.import_file(conn, now, file=catalogue_csv.parse(path.name, path.read_text(encoding="utf-8")), actor=actor)
    items = [{"medins_list_codg": own, "medins_list_name": name, "med_list_codg": code} for own, code, name, *_ in MAPPED]
    for inst in institutions:
        mappings.put(conn, now, institution=inst, items=items)
