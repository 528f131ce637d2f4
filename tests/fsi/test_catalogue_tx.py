"""The catalogue over the national interface, on SQLite and PostgreSQL: a 1301-series download answers a file (9102) whose
rows are exactly the REST catalogue query's; `ver` answers only what changed; files belong to their institution and
expire; 9101 uploads round-trip; 1312 / 1318 / 1319 page and filter the catalogue in national names."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.support import catalogue as tcat
from tests.support import fsi
from tests.support.api import bearer
from yibao.domain import files as file_rules
from yibao.domain.catalogue import COLUMNS
from yibao.domain.errors import Conflict, InputError
from yibao.formats import catalogue_csv, catalogue_txt
from yibao.formats.fsi import BEIJING
from yibao.services.catalogue import versions


def rest_catalogue(client, world, **params):
    r = client.get("/api/v1/his/catalogue", params={"page_size": 1000, **params}, headers=bearer(world.hospital_credential))
    assert r.status_code == 200, r.text
    return r.json()


def fetch(his, out, filename="plc"):
    got = his.ok("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": filename, "fixmedins_code": his.sender.fixmedins_code}})
    data = base64.b64decode(got["file_data"])
    assert len(data) == got["file_size"] and hashlib.sha256(data).hexdigest() == got["sha256"]
    return got, data


def same_row(file_row, rest_row, vali_flag="1"):
    """A file row is the REST entry, column by column (the same text), its time the same instant."""
    for c in (*COLUMNS, "lmt_used_flag"):
        assert file_row[c] == catalogue_txt.cell(rest_row[c]), (rest_row["hilist_code"], c, file_row[c], rest_row[c])
    assert file_row["vali_flag"] == vali_flag
    file_time = datetime.strptime(file_row["updt_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    assert file_time == datetime.fromisoformat(rest_row["updt_time"]).replace(microsecond=0)


T2 = (tcat.CSV.replace(f"{tcat.CEFIXIME},头孢克肟胶囊,101,02,10.00,", f"{tcat.CEFIXIME},头孢克肟胶囊,101,02,9.50,")  # changed
      .replace(f"{tcat.SUPPLEMENT},保健品,101,03,,,,,,,,,0,0,2026-01-01,\n", "")  # removed
      .replace(f"{tcat.SERVICE},诊查费,201,01,,,,,,,,,0,0,2026-01-01,",  # a service item changed too: not in 1301's file
               f"{tcat.SERVICE},诊查费,201,01,30.00,,,,,,,,0,0,2026-01-01,")
      + "XB05BAA001A001010100999,新增注射液,101,02,,0.20,,,,,,,0,0,2026-11-01,\n")  # added


def import_t2(db, clock):
    clock.advance(hours=1)  # the new version's content is timed after the first's
    file = catalogue_csv.parse("t2.csv", tcat.text("440300", "T2", "2026-11-01", T2))
    db.run(lambda c: versions.import_file(c, clock(), file=file, actor="test"))


def test_a_download_is_the_catalogue_exactly(client, world, hospital):
    out = hospital.ok("1301", {"data": {"ver": "0"}})
    assert out["file_qury_no"] and out["filename"].endswith(".txt.zip") and out["ver"] == "440300-T1"
    got, data = fetch(hospital, out)
    assert got["filename"] == out["filename"] and got["data_cnt"] == out["data_cnt"]
    name, rows = catalogue_txt.read(data)
    assert name == out["filename"].removesuffix(".zip") and name.startswith("1301_440300_440300-T1_")
    rest = [r for r in rest_catalogue(client, world)["data"] if r["list_type"] in ("101", "102")]
    assert [r["hilist_code"] for r in rows] == [r["hilist_code"] for r in rest] and len(rows) == out["data_cnt"] == 8
    for f, r in zip(rows, rest):
        same_row(f, r)
    # 1305: the service items alone; 1306: the consumables; each its own file.
    services = hospital.ok("1305", {"data": {"ver": "0"}})
    _, rows = catalogue_txt.read(fetch(hospital, services, services["filename"])[1])
    assert {r["list_type"] for r in rows} == {"201"} and len(rows) == 7 and services["file_qury_no"] != out["file_qury_no"]
    consumables = hospital.ok("1306", {"data": {}})
    _, rows = catalogue_txt.read(fetch(hospital, consumables)[1])
    assert {r["hilist_code"] for r in rows} == {tcat.NURSING, tcat.OWN, tcat.APPROVAL}
    # 1302 (herbal pieces): the test catalogue lists none — an empty file, not a refusal.
    herbal = hospital.ok("1302", {"data": {"ver": "0"}})
    assert herbal["data_cnt"] == 0 and catalogue_txt.read(fetch(hospital, herbal)[1])[1] == []


def test_ver_answers_only_what_changed_after_it(client, world, db, hospital, clock):
    import_t2(db, clock)
    out = hospital.ok("1301", {"data": {"ver": "440300-T1"}})
    assert out["ver"] == "440300-T2"
    _, rows = catalogue_txt.read(fetch(hospital, out)[1])
    by_code = {r["hilist_code"]: r for r in rows}
    assert set(by_code) == {tcat.CEFIXIME, "XB05BAA001A001010100999", tcat.SUPPLEMENT}
    rest = {r["hilist_code"]: r for r in rest_catalogue(client, world)["data"]}
    same_row(by_code[tcat.CEFIXIME], rest[tcat.CEFIXIME])
    assert by_code[tcat.CEFIXIME]["pric_uplmt_amt"] == "9.50"
    same_row(by_code["XB05BAA001A001010100999"], rest["XB05BAA001A001010100999"])
    assert by_code[tcat.SUPPLEMENT]["vali_flag"] == "0" and tcat.SUPPLEMENT not in rest  # removed: said, not silently dropped
    # The service item that changed is 1305's, not 1301's.
    services = hospital.ok("1305", {"data": {"ver": "440300-T1"}})
    assert [r["hilist_code"] for r in catalogue_txt.read(fetch(hospital, services)[1])[1]] == [tcat.SERVICE]
    # Up to date: an empty file. A version the region never had: refused, naming the field.
    assert hospital.ok("1301", {"data": {"ver": "440300-T2"}})["data_cnt"] == 0
    hospital.refused("1301", {"data": {"ver": "440300-T9"}}, "input.data.ver", "没有目录版本", "unknown_ver")
    hospital.refused("1301", {"data": {"ver": 7}}, "input.data.ver", "invalid_text")


def test_a_file_is_its_institutions_alone_and_expires(client, world, db, keyring, hospital, clock):
    out = hospital.ok("1301", {"data": {"ver": "0"}})
    fsi.issue(db, keyring, world.other_hospital.id)
    other = fsi.his(client, world.other_hospital, clock)
    other.sign_in()
    asked = {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": "plc", "fixmedins_code": world.other_hospital.id}}
    stranger = other.refused("9102", asked, "input.fsDownloadIn.file_qury_no", "文件不存在或不属于本机构", "file_not_found")
    made_up = other.refused("9102", {"fsDownloadIn": {**asked["fsDownloadIn"], "file_qury_no": "fsi/plc/" + "0" * 24}}, "file_not_found")
    assert stranger == made_up  # another's file and no file are one answer: nothing said about it
    # Naming itself as the owner in fsDownloadIn does not help: fixmedins_code must be the caller's.
    other.refused("9102", {"fsDownloadIn": {**asked["fsDownloadIn"], "fixmedins_code": world.hospital.id}},
                  "input.fsDownloadIn.fixmedins_code", "not_the_caller")
    hospital.refused("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": "other.zip"}},
                     "input.fsDownloadIn.filename", "filename_mismatch")
    # Until dld_endtime it is there; then refused in words, saying when it expired.
    assert out["dld_endtime"] == (clock() + timedelta(hours=24)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    clock.advance(hours=23, minutes=59)
    fetch(hospital, out)
    clock.advance(minutes=1)
    hospital.refused("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": "plc"}},
                     "input.fsDownloadIn.file_qury_no", f"文件已于 {out['dld_endtime']}（北京时间）过期", "expired", "file_expired")


def test_an_upload_round_trips(hospital):
    content = bytes(range(256)) * 40 + "对明细账\t1\r\n".encode()
    up = hospital.ok("9101", {"fsUploadIn": {"in": base64.b64encode(content).decode(), "filename": "3202_detail.txt",
                                             "fixmedins_code": hospital.sender.fixmedins_code}})
    assert up["filename"] == "3202_detail.txt" and up["file_qury_no"] and up["dld_endtime"]
    got, data = fetch(hospital, up, "3202_detail.txt")
    assert data == content and got["data_cnt"] is None
    assert fetch(hospital, up, "plc")[1] == content
    plc = hospital.ok("9102", {"fsDownloadIn": {"file_qury_no": up["file_qury_no"], "filename": "plc", "fixmedins_code": "plc"}})
    assert base64.b64decode(plc["file_data"]) == content  # some HIS send "plc" as fixmedins_code too
    again = hospital.ok("9101", {"fsUploadIn": {"in": base64.b64encode(b"x").decode(), "filename": "3202_detail.txt"}})
    assert again["file_qury_no"] != up["file_qury_no"]  # each upload its own file
    assert fetch(hospital, again)[1] == b"x" and fetch(hospital, up)[1] == content


def test_bad_uploads_are_refused_in_words(hospital):
    def upload(**kw):
        return {"fsUploadIn": {"in": base64.b64encode(b"abc").decode(), "filename": "a.txt", **kw}}
    too_big = base64.b64encode(b"\0" * (file_rules.MAX_BYTES + 1)).decode()
    hospital.refused("9101", upload(**{"in": too_big}), "input.fsUploadIn.in", "文件超过 5 MB 上限", "larger than 5 MB", "file_too_large")
    hospital.refused("9101", upload(**{"in": "not base64!"}), "input.fsUploadIn.in", "不是有效的 base64", "invalid_base64")
    hospital.refused("9101", upload(**{"in": "YWJj"[:3]}), "input.fsUploadIn.in", "invalid_base64")  # unpadded
    hospital.refused("9101", upload(**{"in": ""}), "input.fsUploadIn.in", "required")
    hospital.refused("9101", upload(**{"in": [1, 2, 3]}), "input.fsUploadIn.in", "required")
    hospital.refused("9101", upload(filename="../etc/passwd"), "input.fsUploadIn.filename", "invalid_filename")
    hospital.refused("9101", upload(filename=""), "input.fsUploadIn.filename", "invalid_filename")
    hospital.refused("9101", upload(fixmedins_code="H44030002"), "input.fsUploadIn.fixmedins_code", "not_the_caller")
    hospital.refused("9101", {"in": "YWJj"}, "input.fsUploadIn", "invalid_object")


def test_the_upload_limit_is_exact():
    most = file_rules.MAX_BYTES
    assert len(file_rules.decode_upload(base64.b64encode(b"\1" * most).decode(), "in")) == most
    with pytest.raises(InputError) as e:
        file_rules.decode_upload(base64.b64encode(b"\1" * (most + 1)).decode(), "in")
    assert e.value.code == "file_too_large"


def test_1312_pages_and_filters_the_catalogue(client, world, db, hospital, clock):
    rest = rest_catalogue(client, world)["data"]
    assert len(rest) == 18
    seen = []
    for page in (1, 2, 3, 4):
        out = hospital.ok("1312", {"data": {"page_num": page, "page_size": 5}})
        assert (out["recordCounts"], out["pages"], out["pageNum"], out["pageSize"]) == (18, 4, page, 5)
        assert out["size"] == len(out["data"]) == (5 if page < 4 else 3) and out["ver"] == "440300-T1"
        seen += out["data"]
    assert [e["hilist_code"] for e in seen] == [r["hilist_code"] for r in rest]
    for national, r in zip(seen, rest):  # the REST entry in national form: numbers, Beijing times
        assert national["insu_admdvs"] == "440300" and national["vali_flag"] == "1"
        for k in ("hilist_name", "list_type", "chrgitm_lv", "lmt_used_flag", "begndate", "enddate", "lmt_medins_lv", "hosp_appr_flag", "rx_flag"):
            assert national[k] == r[k], k
        for k in ("pric_uplmt_amt", "selfpay_prop", "fund_prop"):
            assert national[k] == (None if r[k] is None else Decimal(r[k])), k
        assert national["lmt_med_type"] == ("|".join(r["lmt_med_type"]) or None)
    assert hospital.ok("1312", {"data": {"page_num": "5", "page_size": "5"}})["data"] == []
    one = hospital.ok("1312", {"data": {"hilist_code": tcat.CEFIXIME}})["data"]
    assert [(e["hilist_code"], e["pric_uplmt_amt"], e["chrgitm_lv"]) for e in one] == [(tcat.CEFIXIME, Decimal("10.00"), "02")]
    services = hospital.ok("1312", {"data": {"list_type": "201", "page_size": 100}})
    assert services["recordCounts"] == 7 and {e["list_type"] for e in services["data"]} == {"201"}
    later = hospital.ok("1312", {"data": {"begndate": "2026-12-01"}})["data"]
    assert [e["hilist_code"] for e in later] == [tcat.NEXT_MONTH]
    # updt_time: only what changed after it (the second version's changes, in force from 2026-11-01).
    before = (clock() + timedelta(minutes=30)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    import_t2(db, clock)
    changed = hospital.ok("1312", {"data": {"updt_time": before}})
    assert {e["hilist_code"] for e in changed["data"]} == {tcat.CEFIXIME, tcat.SERVICE, "XB05BAA001A001010100999"}
    assert changed["ver"] == "440300-T2"
    # As of a day before the second version: the first one's entries.
    assert hospital.ok("1312", {"data": {"hilist_code": tcat.CEFIXIME, "query_date": "2026-10-31"}})["data"][0]["pric_uplmt_amt"] == Decimal("10.00")
    for data, field, code in (({"page_size": 1001}, "input.data.page_size", "out_of_range"), ({"page_num": 0}, "input.data.page_num", "out_of_range"),
                              ({"list_type": "999"}, "input.data.list_type", "invalid_choice"),
                              ({"med_chrgitm_type": "09"}, "input.data.med_chrgitm_type", "not_supported"),
                              ({"updt_time": "yesterday"}, "input.data.updt_time", "invalid_time"),
                              ({"insu_admdvs": "999999"}, "input.data.insu_admdvs", "unknown_region")):
        hospital.refused("1312", {"data": data}, field, code)


def test_1318_and_1319_answer_caps_and_own_ratios(hospital):
    caps = hospital.ok("1318", {"data": {}})
    assert [(e["hilist_code"], e["hilist_pric_uplmt_amt"]) for e in caps["data"]] == [
        (tcat.APPROVAL, Decimal("800.00")), (tcat.CEFIXIME, Decimal("10.00"))]
    ratios = hospital.ok("1319", {"data": {"page_size": 10}})
    assert [(e["hilist_code"], e["selfpay_prop"]) for e in ratios["data"]] == [(tcat.IBUPROFEN, Decimal("0.0500"))]
    assert ratios["recordCounts"] == 1 and ratios["data"][0]["insu_admdvs"] == "440300"


def test_a_file_of_the_full_size_round_trips(hospital):
    """5 MB exactly: accepted, and fetched back whole (its answer, ~7 MB of base64, is the message's stored answer too)."""
    content = hashlib.sha256(b"seed").digest() * (file_rules.MAX_BYTES // 32)
    assert len(content) == file_rules.MAX_BYTES
    up = hospital.ok("9101", {"fsUploadIn": {"in": base64.b64encode(content).decode(), "filename": "big.bin"}})
    assert fetch(hospital, up)[1] == content


def test_files_expired_a_week_ago_are_deleted(db, world, clock):
    from sqlalchemy import func, select

    from yibao.services.files import stored
    from yibao.store.tables import exchange_files

    def put(name):
        return db.run(lambda c: stored.put(c, clock(), institution_id=world.hospital.id, region="440300", infno="9101", filename=name,
                                           content=b"x"))
    old = put("old.txt")
    clock.advance(hours=24)
    recent = put("recent.txt")  # the old one has expired, but only just: still known, refused as expired
    with pytest.raises(Conflict) as e:
        db.run(lambda c: stored.fetch(c, clock(), institution_id=world.hospital.id, file_qury_no=old.file_qury_no))
    assert e.value.code == "file_expired"
    clock.advance(days=7, seconds=1)
    put("new.txt")
    left = db.run(lambda c: c.execute(select(exchange_files.c.filename)).scalars().all(), write=False)
    assert sorted(left) == ["new.txt", "recent.txt"] and recent.file_qury_no != old.file_qury_no
    assert db.run(lambda c: c.execute(select(func.count()).select_from(exchange_files)).scalar_one(), write=False) == 2


def test_files_in_the_encrypted_mode(client, world, db, keyring, clock):
    """An institution in the SM4/SM2 mode downloads and uploads the same way: its file comes back inside the sealed output."""
    from yibao.crypto import gm

    key = gm.Sm2PrivateKey.generate()
    sm4 = bytes.fromhex("0123456789abcdeffedcba9876543210")
    fsi.issue(db, keyring, world.other_hospital.id, token="other-fsi-token-0123456", sm4_key=sm4, sm2_public=key.public_key().to_hex())
    sealed = fsi.his(client, world.other_hospital, clock, token="other-fsi-token-0123456", sm4_key=sm4, sm2_private=key)
    sealed.sign_in()
    out = sealed.ok("1306", {"data": {"ver": "0"}})
    _, rows = catalogue_txt.read(fetch(sealed, out)[1])
    assert {r["hilist_code"] for r in rows} == {tcat.NURSING, tcat.OWN, tcat.APPROVAL}
    up = sealed.ok("9101", {"fsUploadIn": {"in": base64.b64encode(b"sealed bytes").decode(), "filename": "s.txt"}})
    assert fetch(sealed, up)[1] == b"sealed bytes"
