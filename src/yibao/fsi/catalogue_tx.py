"""The catalogue transactions and files (docs/fsi.md): the 1301-series downloads (a file of the region's catalogue,
whole or what changed after the version the HIS has, fetched with 9102), the 1312 / 1318 / 1319 queries (a page of
entries in national names), and files — 9101 upload, 9102 download. Thin handlers over services/catalogue (the same
reads as the REST `GET /his/catalogue`) and services/files (the one writer of exchange_files)."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from yibao.domain import files as file_rules
from yibao.domain.catalogue import LIST_TYPES
from yibao.domain.errors import InputError, NotFound, YibaoError
from yibao.formats import catalogue_txt
from yibao.formats.fsi import BEIJING, Number, beijing, inf_time
from yibao.fsi.transactions import Call, _section, _text, handles
from yibao.services.agency.policies import require_known_region
from yibao.services.catalogue import versions
from yibao.services.catalogue.views import entry_view
from yibao.services.files import stored

# infno → the list types (目录类别, docs/catalogue.md) its file holds, and its national name. 1303 医疗机构制剂, 1304 民族药
# and 1307–1311 (diagnoses, operations, ...) are lists yibao does not keep: not offered.
DOWNLOADS: dict[str, tuple[tuple[str, ...], str]] = {
    "1301": (("101", "102"), "西药中成药目录"),
    "1302": (("103",), "中药饮片目录"),
    "1305": (("201",), "医疗服务项目目录"),
    "1306": (("301",), "医用耗材目录"),
}


def _today(call: Call) -> date:
    return beijing(call.now).date()


def _fixmedins(d: dict[str, Any], call: Call, field: str, *, plc: bool = False) -> None:
    """`fixmedins_code` in the section, when given, is the caller's (9102: or "plc", which some HIS send there)."""
    code = d.get("fixmedins_code")
    if code not in (None, "", call.institution.id) and not (plc and code == "plc"):
        raise InputError(f"{field}.fixmedins_code", "not_the_caller", "医药机构编号与网关认证的机构不符", "is not the institution the gateway authenticates")


def _renamed(exc: YibaoError, prefix: str) -> YibaoError:
    if exc.field and not exc.field.startswith("input."):
        exc.field = f"{prefix}.{exc.field}"
    return exc


# ---- 1301 / 1302 / 1305 / 1306: catalogue downloads --------------------------------------------------------

def _file_row(change: versions.Change) -> dict[str, Any]:
    return {**entry_view(change.entry), "vali_flag": "1" if change.valid else "0", "updt_time": inf_time(change.updt_time)}


@handles(*DOWNLOADS)
def download(call: Call, conn: Connection) -> dict[str, Any]:
    """`data{ver}`: the version the HIS already has ("0" or none: none, the whole list). Answers the file's
    `file_qury_no` and `filename` (fetch it with 9102 before `dld_endtime`), `data_cnt` its rows and `ver` the version
    it brings the HIS to — the one to send next time."""
    d = _section(call, "data")
    region = call.institution.region
    ver = _text(d, "ver", "input.data", required=False, max_length=40)
    since = None
    if ver not in (None, "0"):
        assert ver is not None
        since = versions.by_ver(conn, region, ver)
        if since is None:
            raise InputError("input.data.ver", "unknown_ver", f"统筹区 {region} 没有目录版本 {ver}（首次下载传 0）",
                             f"region {region} has no catalogue version {ver} (send 0 for the whole list)")
    list_types, _ = DOWNLOADS[call.infno]
    found = versions.changes(conn, region=region, day=_today(call), list_types=list_types, since=since)
    if found is None:
        raise NotFound("input.data", "no_catalogue", f"统筹区 {region} 今日没有生效的医保目录", f"region {region} has no catalogue in force today")
    rows = [_file_row(c) for c in found.rows]
    at = beijing(call.now)
    txt = f"{call.infno}_{region}_{found.version.ver}_{at:%Y%m%d%H%M%S}.txt"
    content = catalogue_txt.zip_one(txt, catalogue_txt.to_txt(rows), at)
    f = stored.put(conn, call.now, institution_id=call.institution.id, region=region, infno=call.infno, filename=f"{txt}.zip",
                   content=content, data_cnt=len(rows))
    return {"file_qury_no": f.file_qury_no, "filename": f.filename, "dld_endtime": inf_time(f.expires_at), "data_cnt": len(rows),
            "ver": found.version.ver}


# ---- 9101 upload, 9102 download ---------------------------------------------------------------------------

@handles("9101")
def upload_file(call: Call, conn: Connection) -> dict[str, Any]:
    """`fsUploadIn{in, filename, fixmedins_code}`: `in` the file's bytes, base64 (at most 5 MB decoded). Kept for the
    institution until `dld_endtime` (reconciliation's 3202 names it by `file_qury_no`)."""
    d = _section(call, "fsUploadIn")
    _fixmedins(d, call, "input.fsUploadIn")
    filename = file_rules.check_filename(d.get("filename"), "input.fsUploadIn.filename")
    content = file_rules.decode_upload(d.get("in"), "input.fsUploadIn.in")
    f = stored.put(conn, call.now, institution_id=call.institution.id, region=call.institution.region, infno="9101", filename=filename,
                   content=content)
    return {"file_qury_no": f.file_qury_no, "filename": f.filename, "dld_endtime": inf_time(f.expires_at)}


@handles("9102")
def download_file(call: Call, conn: Connection) -> dict[str, Any]:
    """`fsDownloadIn{file_qury_no, filename, fixmedins_code}` → the file, base64 in `file_data` (yibao keeps the envelope;
    national gateways answer the bytes themselves [?]), with its size and SHA-256."""
    d = _section(call, "fsDownloadIn")
    _fixmedins(d, call, "input.fsDownloadIn", plc=True)
    qury_no = _text(d, "file_qury_no", "input.fsDownloadIn", max_length=40)
    filename = _text(d, "filename", "input.fsDownloadIn", required=False, max_length=200)
    assert qury_no is not None
    try:
        f = stored.fetch(conn, call.now, institution_id=call.institution.id, file_qury_no=qury_no, filename=filename)
    except YibaoError as exc:
        raise _renamed(exc, "input.fsDownloadIn") from None
    return {"file_qury_no": f.file_qury_no, "filename": f.filename, "file_size": f.size, "sha256": f.sha256,
            "dld_endtime": inf_time(f.expires_at), "data_cnt": f.data_cnt, "file_data": base64.b64encode(f.content).decode("ascii")}


# ---- 1312 / 1318 / 1319: catalogue queries ----------------------------------------------------------------

def _day(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                pass
    raise InputError(field, "invalid_date", "日期应为 yyyy-MM-dd", "must be a date yyyy-MM-dd")


def _time(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                at = datetime.strptime(value, fmt).replace(tzinfo=BEIJING)
            except ValueError:
                continue
            if 1900 <= at.year <= 2100:  # the year 1 cannot even be turned to UTC
                return at
    raise InputError(field, "invalid_time", "更新时间应为 yyyy-MM-dd HH:mm:ss（北京时间，1900–2100年）",
                     "must be yyyy-MM-dd HH:mm:ss (Beijing time, 1900–2100)")


def _int(value: Any, field: str, default: int, most: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())) \
            or not 1 <= int(value) <= most:
        raise InputError(field, "out_of_range", f"应为 1–{most} 的整数", f"must be a whole number 1–{most}")
    return int(value)


def _query(call: Call, conn: Connection, having: str | None) -> tuple[str, dict[str, Any]]:
    """The query every 13xx answers: the version in force on `query_date` (today) in `insu_admdvs` (the institution's
    region), one `hilist_code`, a `list_type`, entries beginning on or after `begndate` [?], changed after `updt_time`,
    page `page_num` of `page_size` (at most 1000)."""
    d = _section(call, "data")
    region = _text(d, "insu_admdvs", "input.data", required=False, max_length=6) or call.institution.region
    require_known_region(region, "input.data.insu_admdvs")
    list_type = _text(d, "list_type", "input.data", required=False, max_length=3)
    if list_type is not None and list_type not in LIST_TYPES:
        raise InputError("input.data.list_type", "invalid_choice", f"目录类别应为 {' | '.join(LIST_TYPES)}", f"must be one of {', '.join(LIST_TYPES)}")
    if d.get("med_chrgitm_type") not in (None, ""):
        raise InputError("input.data.med_chrgitm_type", "not_supported", "本平台目录不含医疗收费项目类别，请按目录类别（list_type）查询",
                         "yibao's catalogue does not carry med_chrgitm_type: filter by list_type")
    result = versions.query(conn, region=region, day=_day(d.get("query_date"), "input.data.query_date") or _today(call),
                            hilist_code=_text(d, "hilist_code", "input.data", required=False, max_length=30),
                            updated_since=_time(d.get("updt_time"), "input.data.updt_time"),
                            page_num=_int(d.get("page_num"), "input.data.page_num", 1, 100_000),
                            page_size=_int(d.get("page_size"), "input.data.page_size", 100, 1000),
                            list_types=None if list_type is None else (list_type,), begins_from=_day(d.get("begndate"), "input.data.begndate"),
                            having=having)
    return region, result


def _paged(result: dict[str, Any], data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": data, "pageNum": result["page_num"], "pageSize": result["page_size"], "size": len(data),
            "recordCounts": result["recordCounts"], "pages": result["pages"], "ver": result["ver"], "insu_admdvs": result["insu_admdvs"]}


def _num(text: str | None) -> Number | None:
    return None if text is None else Number(text)


def _updt(v: dict[str, Any]) -> str | None:
    return None if v["updt_time"] is None else inf_time(datetime.fromisoformat(v["updt_time"].replace("Z", "+00:00")))


def hilist(v: dict[str, Any], region: str) -> dict[str, Any]:
    """An entry (the REST view, services/catalogue/views.entry_view) as 1312 answers it: amounts and ratios numbers,
    times Beijing's; `med_chrgitm_type` is not kept (null)."""
    return {"hilist_code": v["hilist_code"], "hilist_name": v["hilist_name"], "insu_admdvs": region, "begndate": v["begndate"],
            "enddate": v["enddate"], "med_chrgitm_type": None, "chrgitm_lv": v["chrgitm_lv"], "lmt_used_flag": v["lmt_used_flag"],
            "list_type": v["list_type"], "pric_uplmt_amt": _num(v["pric_uplmt_amt"]), "selfpay_prop": _num(v["selfpay_prop"]),
            "fund_prop": _num(v["fund_prop"]), "lmt_med_type": "|".join(v["lmt_med_type"]) or None, "lmt_medins_lv": v["lmt_medins_lv"],
            "lmt_cnt": _num(v["lmt_cnt"]), "lmt_cnt_day": _num(v["lmt_cnt_day"]), "lmt_age_min": v["lmt_age_min"], "lmt_age_max": v["lmt_age_max"],
            "hosp_appr_flag": v["hosp_appr_flag"], "rx_flag": v["rx_flag"], "vali_flag": "1", "updt_time": _updt(v),
            "item_category": "|".join(v["item_category"]) or None}


@handles("1312")
def query_catalogue(call: Call, conn: Connection) -> dict[str, Any]:
    region, result = _query(call, conn, None)
    return _paged(result, [hilist(v, region) for v in result["data"]])


@handles("1318")
def query_price_caps(call: Call, conn: Connection) -> dict[str, Any]:
    """医保目录限价: the entries with a price cap. `hilist_lmtpric_type` and `overlmt_dspo_way` are not kept (null) [?]."""
    region, result = _query(call, conn, "cap")
    return _paged(result, [{"hilist_code": v["hilist_code"], "hilist_name": v["hilist_name"], "insu_admdvs": region,
                            "hilist_lmtpric_type": None, "overlmt_dspo_way": None, "hilist_pric_uplmt_amt": _num(v["pric_uplmt_amt"]),
                            "begndate": v["begndate"], "enddate": v["enddate"], "vali_flag": "1", "updt_time": _updt(v)}
                           for v in result["data"]])


@handles("1319")
def query_self_pay_ratios(call: Call, conn: Connection) -> dict[str, Any]:
    """医保目录先自付比例: the class-B entries with a ratio of their own; every other class-B entry pays the region's default
    (its policy file's catalogue.b_self_pay_ratio). `selfpay_prop_psn_type` / `selfpay_prop_type` are not kept (null) [?]."""
    region, result = _query(call, conn, "ratio")
    return _paged(result, [{"hilist_code": v["hilist_code"], "hilist_name": v["hilist_name"], "insu_admdvs": region,
                            "selfpay_prop_psn_type": None, "selfpay_prop_type": None, "selfpay_prop": _num(v["selfpay_prop"]),
                            "begndate": v["begndate"], "enddate": v["enddate"], "vali_flag": "1", "updt_time": _updt(v)}
                           for v in result["data"]])
