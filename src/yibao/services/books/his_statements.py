"""A hospital reconciles its settlements with the platform (national 3201 对总账 and 3202 对明细账; the REST
`POST /his/statements/totals|detail`; docs/reconciliation-his.md). Reads only: the platform's settlements are the
record, the hospital's figures are checked against them and nothing the hospital sends changes them; 3202's result is
a file the hospital fetches with 9102 (services/files).

The platform's rows for a period (domain/his_statement.py): a settlement is a forward row on the Beijing day it was
settled and a reverse row on the day it was cancelled (2208/2305, or refunded in full through its payment); a
settlement reversed by 2601 (冲正) on the day it was made, a hold voided because its payment failed, and a hold still
pending are no rows at all — none of them ever took effect; a 冲正 on a later day is a reverse row on its own day, like a
cancellation, so a day already reconciled (or cleared) is never rewritten. A settlement partly refunded through its payment (``partial``) stays a forward
row until it is refunded in full [guess: the national practice for a part-refunded mobile payment was not found]."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError
from yibao.domain.his_statement import (
    BALANCED,
    FORWARD,
    REVERSE,
    UNBALANCED,
    Period,
    ResultRow,
    Row,
    Totals,
    TotalsDifference,
    compare_rows,
    compare_totals,
)
from yibao.domain.money import format_yuan
from yibao.formats import his_statement as files
from yibao.formats.fsi import BEIJING, beijing
from yibao.services.agency.institutions import Institution
from yibao.services.files import stored
from yibao.store.tables import persons as P
from yibao.store.tables import settlements as S
from yibao.store.tables import visits as V

EFFECTIVE = ("settled", "partial", "cancelled")  # states a settlement took effect in (pending and voided never did)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), BEIJING).astimezone(timezone.utc)


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


def platform_rows(conn: Connection, institution_id: str, period: Period) -> list[Row]:
    start, stop = _utc(period.begin), _utc(period.end + timedelta(days=1))
    q = (select(S.c.id, S.c.visit_id, S.c.person_id, S.c.total, S.c.fund_total, S.c.account_pay, S.c.cash_pay, S.c.msgid,
                S.c.status, S.c.created_at, S.c.cancelled_at, S.c.cancel_reason)
         .where(S.c.institution_id == institution_id, S.c.insured_region == period.setl_optins, S.c.status.in_(EFFECTIVE),
                or_(and_(S.c.created_at >= start, S.c.created_at < stop), and_(S.c.cancelled_at >= start, S.c.cancelled_at < stop))))
    if period.insurance_types is not None:
        q = q.join(P, P.c.id == S.c.person_id).where(P.c.insurance_type.in_(period.insurance_types))
    if period.visit_kinds is not None:
        q = q.join(V, V.c.id == S.c.visit_id).where(V.c.kind.in_(period.visit_kinds))
    rows: list[Row] = []
    for r in conn.execute(q.order_by(S.c.created_at, S.c.id)):
        created, cancelled = _aware(r.created_at), _aware(r.cancelled_at)
        assert created is not None
        if r.status == "cancelled" and r.cancel_reason == "reversal" and cancelled is not None and \
                beijing(created).date() == beijing(cancelled).date():
            continue  # 冲正 the same day: as if it never happened (a later one is a cancellation: a day already reconciled stays as it was)
        if start <= created < stop:
            rows.append(Row(r.id, r.visit_id, r.person_id, r.total, r.fund_total, r.account_pay, FORWARD, r.cash_pay, r.msgid))
        if r.status == "cancelled" and cancelled is not None and start <= cancelled < stop:
            rows.append(Row(r.id, r.visit_id, r.person_id, -r.total, -r.fund_total, -r.account_pay, REVERSE, -r.cash_pay, r.msgid))
    return rows


def _difference_text(diffs: list[TotalsDifference]) -> str:
    def show(d: TotalsDifference, v: int) -> str:
        return str(v) if d.field == "fixmedins_setl_cnt" else format_yuan(v)
    zh = "；".join(f"{d.zh}：医院 {show(d, d.hospital)}，医保 {show(d, d.platform)}" for d in diffs)
    en = "; ".join(f"{d.en}: hospital {show(d, d.hospital)}, platform {show(d, d.platform)}" for d in diffs)
    return f"{zh}。{en}"


@dataclass(frozen=True)
class TotalsResult:
    setl_optins: str
    stmt_rslt: str  # "0" balanced, "1" not
    stmt_rslt_dscr: str
    platform: Totals
    differences: list[TotalsDifference]


def check_totals(conn: Connection, institution: Institution, period: Period, hospital: Totals) -> TotalsResult:
    """3201: the hospital's totals for the period against the platform's."""
    mine = Totals.of(platform_rows(conn, institution.id, period))
    diffs = compare_totals(hospital, mine)
    text = _difference_text(diffs) if diffs else "对账平 balanced"
    return TotalsResult(period.setl_optins, UNBALANCED if diffs else BALANCED, text, mine, diffs)


@dataclass(frozen=True)
class DetailResult:
    file: stored.StoredFile  # the result file, fetched with 9102
    rows: list[ResultRow]

    @property
    def balanced(self) -> int:
        return sum(1 for r in self.rows if r.result == BALANCED)

    @property
    def unbalanced(self) -> int:
        return len(self.rows) - self.balanced


def check_declared(rows: list[Row], declared: Totals, field: str) -> None:
    """3202 names the file's own totals: a file that does not add up to them is refused before it is compared (a
    truncated upload must not read as settlements missing at the hospital)."""
    mine = Totals.of(rows)
    for attr, name in (("medfee", "medfee_sumamt"), ("fund", "fund_pay_sumamt"), ("count", "fixmedins_setl_cnt")):
        want, got = getattr(declared, attr), getattr(mine, attr)
        if want != got:
            shown = (str(want), str(got)) if attr == "count" else (format_yuan(want), format_yuan(got))
            raise InputError(f"{field}.{name}", "file_totals_mismatch", f"与明细文件合计不符：申报 {shown[0]}，文件合计 {shown[1]}",
                             f"disagrees with the detail file: declared {shown[0]}, the file adds up to {shown[1]}")


def check_detail(conn: Connection, now: datetime, institution: Institution, period: Period, hospital: list[Row]) -> DetailResult:
    """3202: every row of the hospital's detail against the platform's; the result file (every row of either side with
    its stmt_rslt and a memo) is stored for the institution alone."""
    compared = compare_rows(hospital, platform_rows(conn, institution.id, period))
    content = files.write_result(compared, now.astimezone(BEIJING))
    f = stored.put(conn, now, institution_id=institution.id, region=institution.region, infno="3202",
                   filename=f"result-{period.begin:%Y%m%d}-{period.end:%Y%m%d}.zip", content=content, data_cnt=len(compared))
    return DetailResult(f, compared)
