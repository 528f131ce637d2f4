"""A visit opened with its lines and settled in ONE unit (a payment's first unit) is priced from what that unit wrote,
not read back (visits.fresh): the same money as a visit settled apart, and never a stale copy once the unit changed it."""

from __future__ import annotations

from sqlalchemy import event

from tests.support.settlement import LINES, open_with_lines
from tests.support.world import seed
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest

_MONEY = ("medfee_sumamt", "fulamt_ownpay_amt", "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")


def _in_one_unit(db, inst, person, msgid, *, between=None):
    """Open the visit, upload its lines and settle it (no account) in one unit; ``between`` runs before the settlement.
    Answers the document and the statements the settlement sent."""
    now = db.clock()

    def unit(c):
        opened = visits.open_visit_for(c, now, institution=inst, person_id=person.id, kind="outpatient", person=person)
        visits.upload_lines(c, now, institution=inst, visit_id=opened.visit.id, items=LINES, opened=opened)
        if between is not None:
            between(c, opened.visit.id)
        sent: list[str] = []
        raw = c.connection.dbapi_connection
        if c.dialect.name == "sqlite":
            raw.set_trace_callback(sent.append)
        else:
            event.listen(c.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        try:
            doc = settlement.settle(c, now, institution=inst, visit_id=opened.visit.id, msgid=msgid, account=AccountRequest(use=False),
                                    actor="test")
        finally:
            if c.dialect.name == "sqlite":
                raw.set_trace_callback(None)
        return doc, sent
    return db.run(unit)


def test_a_visit_opened_and_settled_in_one_unit_is_priced_as_one_read_back_and_nothing_is_read_back(db, keyring):
    w = seed(db, keyring)
    apart = open_with_lines(db, w.hospital, w.employee.id)  # the same lines, stored in units of their own and read back
    read_back = db.run(lambda c: settlement.presettle(c, db.clock(), institution=w.hospital, visit_id=apart.id,
                                                      account=AccountRequest(use=False)), write=False)
    together, sent = _in_one_unit(db, w.hospital, w.employee, "TOGETHER")
    assert {k: together[k] for k in _MONEY} == {k: read_back[k] for k in _MONEY}
    assert [{k: v for k, v in line.items() if k != "fee_ocur_time"} for line in together["lines"]] == \
        [{k: v for k, v in line.items() if k != "fee_ocur_time"} for line in read_back["lines"]]
    assert all(line["fee_ocur_time"] for line in together["lines"])
    assert (together["psn_no"], together["med_type"], together["fixmedins_code"]) == (w.employee.id, "outpatient", w.hospital.id)
    if db.dialect == "sqlite":  # PostgreSQL's prepared statements go under Core's events: counted on SQLite only
        reads = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
        assert reads and not [s for s in reads if " FROM fee_lines" in s or " FROM persons" in s or " FROM visits" in s], reads


def test_a_line_revoked_in_the_same_unit_is_not_priced_from_the_stale_copy(db, keyring):
    w = seed(db, keyring)
    whole, _ = _in_one_unit(db, w.hospital, w.employee, "WHOLE")
    less, _ = _in_one_unit(db, w.hospital, w.retiree, "LESS", between=lambda c, visit_id: visits.revoke_line(
        c, institution=w.hospital, visit_id=visit_id, feedetl_sn="3"))
    assert whole["medfee_sumamt"] == "375.00"
    assert less["medfee_sumamt"] == "325.00" and [line["feedetl_sn"] for line in less["lines"]] == ["1", "2"]
