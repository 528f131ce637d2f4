"""Reconciliation transactions (docs/reconciliation-his.md): 3201 对总账 — the hospital's totals for a period, answered
balanced or not with what differs; 3202 对明细账 — its detail file (uploaded first with 9101, named by
`file_qury_no`) compared row by row, answered with a result file to fetch with 9102. Thin handlers over
services/books/his_statements.py, as the REST `POST /his/statements/totals|detail` (the fields read by
formats/his_statement.py for both)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from yibao.domain.errors import YibaoError
from yibao.formats import his_statement as fmt
from yibao.formats.fsi import inf_time
from yibao.fsi.transactions import Call, _section, _text, handles
from yibao.services.books import his_statements
from yibao.services.files import stored

F = "input.data"


@handles("3201")
def totals(call: Call, conn: Connection) -> dict[str, Any]:
    """`data{insutype, clr_type, setl_optins, stmt_begndate, stmt_enddate, medfee_sumamt, fund_pay_sumamt, acct_pay,
    fixmedins_setl_cnt}` → `stmtinfo{setl_optins, stmt_rslt, stmt_rslt_dscr}`: 0 balanced, 1 not, saying which total
    differs and both figures."""
    d = _section(call, "data")
    r = his_statements.check_totals(conn, call.institution, fmt.period(d, F, insutype_required=True), fmt.totals(d, F, detail=False))
    return {"stmtinfo": {"setl_optins": r.setl_optins, "stmt_rslt": r.stmt_rslt, "stmt_rslt_dscr": r.stmt_rslt_dscr}}


@handles("3202")
def detail(call: Call, conn: Connection) -> dict[str, Any]:
    """`data{setl_optins, file_qury_no, stmt_begndate, stmt_enddate, medfee_sumamt, fund_pay_sumamt, cash_payamt,
    fixmedins_setl_cnt[, clr_type]}` → `fileinfo{file_qury_no, filename, dld_endtime}`, the result file (9102), and
    yibao's summary of it (`stmt_rslt`, `balanced_cnt`, `unbalanced_cnt`)."""
    d = _section(call, "data")
    period = fmt.period(d, F, insutype_required=False)
    declared = fmt.totals(d, F, detail=True)
    qury_no = _text(d, "file_qury_no", F, max_length=40)
    assert qury_no is not None
    try:
        upload = stored.fetch(conn, call.now, institution_id=call.institution.id, file_qury_no=qury_no)
    except YibaoError as exc:
        exc.field = f"{F}.file_qury_no"
        raise
    rows = fmt.read_detail(upload.content, f"{F}.file_qury_no")
    his_statements.check_declared(rows, declared, F)
    r = his_statements.check_detail(conn, call.now, call.institution, period, rows)
    return {"fileinfo": {"file_qury_no": r.file.file_qury_no, "filename": r.file.filename, "dld_endtime": inf_time(r.file.expires_at)},
            "stmt_rslt": "0" if r.unbalanced == 0 else "1", "balanced_cnt": r.balanced, "unbalanced_cnt": r.unbalanced}
