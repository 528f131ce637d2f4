"""Writes the DEMO catalogues (catalogue-<region>.csv beside this file) for the three demo regions, deterministically:
`python -m yibao.sandbox.catalogue.generate`. DEMO data — invented entries in the national code shapes, not a real
catalogue; the shapes themselves are partly guessed (docs/catalogue.md)."""

from __future__ import annotations

import random
from pathlib import Path

from yibao.formats.catalogue_csv import header_line
from yibao.sandbox.catalogue import BEGNDATE, MAPPED, NOTE, REGIONS, VERSION

HERE = Path(__file__).parent

WESTERN = ("阿司匹林肠溶片 B01AC", "二甲双胍片 A10BA", "氨氯地平片 C08CA", "阿托伐他汀钙片 C10AA", "奥美拉唑肠溶胶囊 A02BC",
           "左氧氟沙星片 J01MA", "头孢呋辛酯片 J01DC", "阿奇霉素片 J01FA", "氯雷他定片 R06AX", "孟鲁司特钠片 R03DC",
           "缬沙坦胶囊 C09CA", "美托洛尔缓释片 C07AB", "硝苯地平控释片 C08CA", "格列美脲片 A10BB", "胰岛素注射液 A10AB",
           "甲钴胺片 B03BA", "对乙酰氨基酚片 N02BE", "布地奈德吸入剂 R03BA", "沙美特罗替卡松吸入剂 R03AK", "氢氯噻嗪片 C03AA",
           "螺内酯片 C03DA", "华法林钠片 B01AA", "氯吡格雷片 B01AC", "瑞舒伐他汀钙片 C10AA", "埃索美拉唑镁肠溶片 A02BC",
           "莫西沙星片 J01MA", "头孢克洛胶囊 J01DC", "克拉霉素片 J01FA", "西替利嗪片 R06AE", "氨溴索片 R05CB",
           "地塞米松片 H02AB", "泼尼松片 H02AB", "左甲状腺素钠片 H03AA", "阿仑膦酸钠片 M05BA", "双氯芬酸钠缓释片 M01AB",
           "塞来昔布胶囊 M01AH", "舍曲林片 N06AB", "艾司唑仑片 N05CD", "奥氮平片 N05AH", "利培酮片 N05AX",
           "卡马西平片 N03AF", "丙戊酸钠缓释片 N03AG", "多奈哌齐片 N06DA", "他克莫司胶囊 L04AD", "利妥昔单抗注射液 L01XC",
           "曲妥珠单抗注射液 L01XC", "吉非替尼片 L01XE", "阿卡波糖片 A10BF", "西格列汀片 A10BH", "达格列净片 A10BK",
           "替格瑞洛片 B01AC", "利伐沙班片 B01AF", "坦索罗辛缓释胶囊 G04CA", "非那雄胺片 G04CB", "雷贝拉唑钠肠溶片 A02BC",
           "蒙脱石散 A07BC", "乳果糖口服溶液 A06AD", "复方甘草酸苷片 A05BA", "小儿布洛芬混悬液 M01AE", "重组人生长激素注射液 H01AC")
PATENT = ("连花清瘟胶囊", "复方丹参滴丸", "银黄颗粒", "板蓝根颗粒", "藿香正气水", "六味地黄丸", "速效救心丸", "通心络胶囊",
          "血塞通软胶囊", "小儿豉翘清热颗粒", "蒲地蓝消炎口服液", "三九胃泰颗粒", "逍遥丸", "乌鸡白凤丸", "麝香保心丸",
          "复方鲜竹沥液", "川贝枇杷膏", "金水宝胶囊", "百令胶囊", "丹红注射液", "参麦注射液", "清开灵颗粒", "双黄连口服液",
          "云南白药胶囊", "脑心通胶囊")
HERBS = ("黄芪", "当归", "党参", "白术", "茯苓", "甘草", "川芎", "白芍", "熟地黄", "枸杞子", "金银花", "连翘", "菊花", "桔梗",
         "陈皮", "半夏", "厚朴", "柴胡", "黄芩", "黄连", "丹参", "三七粉", "西洋参", "冬虫夏草", "鹿茸片")
SERVICES = ("住院诊查费", "急诊诊查费", "普通床位费", "重症监护", "静脉输液", "肌肉注射", "换药（小）", "清创缝合", "导尿",
            "吸氧", "心电图检查", "动态心电图", "超声心动图", "腹部彩超", "胸部X线摄影", "MRI检查（平扫）", "PET-CT",
            "胃镜检查", "肠镜检查", "肝功能检测", "肾功能检测", "血脂检测", "糖化血红蛋白", "尿常规", "粪便常规", "凝血功能",
            "新冠核酸检测", "病理检查", "阑尾切除术", "胆囊切除术（腹腔镜）", "白内障超声乳化", "剖宫产术", "顺产接生",
            "全髋关节置换术", "冠状动脉造影", "经皮冠状动脉支架植入术", "血液透析", "腹膜透析", "针灸", "推拿", "拔罐",
            "康复评定", "运动疗法", "言语训练", "心理咨询", "家庭病床巡诊", "中医辨证论治", "麻醉（全身）", "术后镇痛",
            "口腔检查", "洁牙", "根管治疗", "视力检查", "验光", "听力检查", "骨密度检测", "体检套餐（自费）", "美容注射（自费）",
            "特需门诊诊查费", "营养咨询")
CONSUMABLES = ("一次性输液器", "一次性注射器", "医用纱布", "医用胶带", "留置针", "导尿管", "吸氧管", "冠脉支架（药物洗脱）",
               "人工晶体", "人工髋关节", "心脏起搏器", "血液透析器", "一次性使用吻合器", "缝合线", "骨科钢板", "骨科螺钉",
               "医用口罩", "医用手套", "造口袋", "敷贴", "胰岛素笔针头", "血糖试纸", "真空采血管", "雾化器", "医用冷敷贴（自费）",
               "弹力袜（自费）", "助听器（自费）", "轮椅（自费）", "颈托", "护膝（自费）")


# Consumables a policy's item_ratios may pay at their own ratio (the item_category column); DEMO choices.
IMPLANTS = {"冠脉支架（药物洗脱）": "implant", "人工晶体": "implant", "人工髋关节": "implant", "心脏起搏器": "implant|imported",
            "骨科钢板": "implant", "骨科螺钉": "implant"}


def _row(*values: object, per_day: str = "", category: str = "") -> str:
    return ",".join("" if v is None else str(v) for v in (*values, per_day, category))  # lmt_cnt_day, item_category: the last columns


def rows(region: str) -> list[str]:
    """The region's entries, deterministic: the mapped ones fixed, the others drawn from a generator seeded by the region."""
    rng = random.Random(f"yibao-demo-catalogue-{region}")
    out = []
    begin = BEGNDATE.isoformat()
    for _, code, name, list_type, lv, cap, prop, rx in MAPPED:
        out.append(_row(code, name, list_type, lv, cap, prop, "", "", "", "", "", "", "0", rx, begin, ""))

    def limits(lv: str) -> list[str]:
        """Some entries carry limited-use rules (限定支付范围): a visit kind, a minimum level, a quantity, an age, an approval."""
        pick = rng.random()
        kinds = level = cnt = age_min = age_max = ""
        appr = "0"
        if lv != "03" and pick < 0.06:
            kinds = "inpatient"
        elif lv != "03" and pick < 0.12:
            level = rng.choice(("level2", "level3"))
        elif lv != "03" and pick < 0.17:
            cnt = str(rng.choice((1, 2, 3, 5, 10)))
        elif lv != "03" and pick < 0.20:
            age_max = "14"
        elif lv != "03" and pick < 0.22:
            age_min = "60"
        elif lv != "03" and pick < 0.25:
            appr = "1"
        return [kinds, level, cnt, age_min, age_max, appr]

    def level_and_money(base: int) -> tuple[str, str, str]:
        lv = rng.choices(("01", "02", "03"), (5, 4, 1))[0]
        cap = f"{base * rng.choice((8, 9, 10)) // 10}.00" if lv != "03" and rng.random() < 0.3 else ""
        prop = rng.choice(("0.05", "0.08", "0.15", "0.20")) if lv == "02" and rng.random() < 0.35 else ""
        return lv, cap, prop

    for i, item in enumerate(WESTERN, 1):
        name, atc = item.split(" ")
        lv, cap, prop = level_and_money(rng.randint(8, 400))
        code = f"X{atc}{rng.choice('ABCDEFGT')}{rng.randint(1, 999):03d}A{rng.randint(1, 999):03d}0101{i:05d}"
        out.append(_row(code, name, "101", lv, cap, prop, "", *limits(lv), "1" if rng.random() < 0.7 else "0", begin, ""))
    for i, name in enumerate(PATENT, 1):
        lv, cap, prop = level_and_money(rng.randint(15, 120))
        code = f"Z{rng.choice('ABCDEF')}{rng.randint(1, 20):02d}{rng.choice('ABC')}{rng.choice('ABC')}{rng.randint(1, 999):04d}0101{i:05d}"
        out.append(_row(code, name, "102", lv, cap, prop, "", *limits(lv), "0", begin, ""))
    for i, name in enumerate(HERBS, 1):
        lv = "03" if name in ("冬虫夏草", "鹿茸片", "西洋参", "三七粉") else "01"
        out.append(_row(f"T{i:09d}", name, "103", lv, "", "", "", "", "", "", "", "", "0", "0", begin, ""))
    for i, name in enumerate(SERVICES, 1):
        lv, cap, prop = level_and_money(rng.randint(5, 3000))
        if "自费" in name or name.startswith("特需"):
            lv, cap, prop = "03", "", ""
        fund = "0.80" if name in ("PET-CT", "MRI检查（平扫）") else ""  # a fund-ratio override (stored; not used yet)
        out.append(_row(f"{rng.randint(1, 33):03d}{rng.randint(100, 999):03d}{i:05d}0000", name, "201", lv, cap, prop, fund, *limits(lv),
                        "0", begin, "", per_day="1" if name in ("普通床位费", "重症监护") else ""))  # one a day
    for i, name in enumerate(CONSUMABLES, 1):
        lv, cap, prop = level_and_money(rng.randint(2, 30000))
        if "自费" in name:
            lv, cap, prop = "03", "", ""
        out.append(_row(f"C{rng.randint(1, 19):02d}{rng.randint(1, 99):02d}{rng.randint(0, 999999):06d}{i:09d}", name, "301", lv, cap, prop, "",
                        *limits(lv), "0", begin, "", category=IMPLANTS.get(name, "") if lv != "03" else ""))
    return out


def text(region: str) -> str:
    return header_line(NOTE, ver=f"{region}-{VERSION}", region=region, begndate=BEGNDATE) + "\n".join(rows(region)) + "\n"


def main() -> None:
    for region in REGIONS:
        (HERE / f"catalogue-{region}.csv").write_text(text(region), encoding="utf-8")


if __name__ == "__main__":
    main()
