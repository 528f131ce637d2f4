"""Dynamic payment codes through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from tests.support.identity import authenticate, ecard, enrol_adult, guardian_ready, id_number_of, link_child, name_of
from tests.support.world import seed
from yibao.domain import paycode
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, TooManyAttempts, YibaoError
from yibao.domain.identity import make_id_number
from yibao.services.agency import institutions
from yibao.services.books import audit
from yibao.services.payments import paycodes
from yibao.services.people import cards, filings
from yibao.store.tables import family_links, paycode_refusals
from yibao.store.tables import paycodes as PC

RICH = 600000


def issue(db, keyring, holder_id, person_id=None):
    return db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=holder_id, person_id=person_id, actor="test"))


def scan(db, keyring, code, institution, terminal_id=None):
    """What the HIS endpoint does: the refusal (if any) is committed, then raised."""
    return paycodes.unwrap(db.run(lambda c: paycodes.consume(c, keyring, db.clock(), code=code, institution=institution,
                                                             terminal_id=terminal_id, actor="test")))


def refused(db, keyring, code, institution, terminal_id=None) -> YibaoError:
    with pytest.raises(YibaoError) as exc:
        scan(db, keyring, code, institution, terminal_id)
    return exc.value


def holder_with_ecard(db, keyring, balance=300000):
    w = seed(db, keyring, balance=balance)
    ecard(db, keyring, w.employee.id, name_of(1), id_number_of(1))
    return w


def forge(keyring, code: str, *, residue_delta: int = 0, mac: str | None = None) -> str:
    """A well-formed code (valid check digit) with a changed counter or MAC: what a guesser can make."""
    parts = paycode.parse(code)
    body = f"{paycode.PREFIX}{parts.slot}{(parts.counter_residue + residue_delta) % 100:02d}{mac or parts.mac}"
    return body + str(paycode.damm(body))


def test_a_holder_gets_a_code_for_their_ecard_and_the_hospital_consumes_it_once(db, keyring):
    w = holder_with_ecard(db, keyring)
    got = issue(db, keyring, w.employee.id)
    ecard_ = db.run(lambda c: cards.active_ecard(c, w.employee.id), write=False)
    assert (got.person_id, got.holder_id, got.card_id, got.card_kind) == (w.employee.id, w.employee.id, ecard_.id, "ecard")
    assert len(got.code) == 20 and got.code.startswith("91") and got.counter == 1
    assert got.ttl_seconds == 180 and got.expires_at == db.clock() + timedelta(seconds=180)

    done = scan(db, keyring, got.code, w.hospital, "T1")
    assert (done.person_id, done.card_id, done.holder_id, done.relation) == (w.employee.id, ecard_.id, w.employee.id, "self")
    assert (done.institution_id, done.terminal_id, done.insured_region) == (w.hospital.id, "T1", "440300")
    view = db.run(lambda c: paycodes.consumed_view(c, keyring, done), write=False)
    assert view["psn_name"] == "测**" and view["psn_no"] == w.employee.id and "*" in view["card_no"]

    again = refused(db, keyring, got.code, w.other_hospital)
    assert (type(again), again.code, again.field) == (Conflict, "paycode_used", "code")
    rows = db.run(lambda c: paycodes.refusals(c, w.other_hospital.id), write=False)
    assert [(r["reason"], r["counted"]) for r in rows] == [("paycode_used", False)]  # a genuine used code is not a guess


def test_issue_and_consume_are_audited_without_the_code(db, keyring):
    w = holder_with_ecard(db, keyring)
    got = issue(db, keyring, w.employee.id)
    scan(db, keyring, got.code, w.hospital)
    entries = db.run(lambda c: audit.entries(c, "440300", 2), write=False)
    assert [e.action for e in entries] == ["paycode.consume", "paycode.issue"]
    for e in entries:
        assert got.code not in e.detail and paycode.parse(got.code).mac not in e.detail
    assert all(r.ok for r in db.run(audit.verify, write=False))


def test_refresh_kills_the_previous_code_at_once(db, keyring):
    w = holder_with_ecard(db, keyring)
    first = issue(db, keyring, w.employee.id)
    db.clock.advance(seconds=20)
    second = issue(db, keyring, w.employee.id)
    assert second.code != first.code and second.counter == first.counter + 1
    err = refused(db, keyring, first.code, w.hospital)
    assert (type(err), err.code) == (Conflict, "paycode_replaced")
    assert scan(db, keyring, second.code, w.hospital).card_id == second.card_id


def test_the_code_expires_after_the_policy_ttl(db, keyring):
    w = holder_with_ecard(db, keyring)
    got = issue(db, keyring, w.employee.id)
    db.clock.advance(seconds=180)
    err = refused(db, keyring, got.code, w.hospital)
    assert (type(err), err.code) == (Conflict, "paycode_expired")
    # Refreshing after expiry: the old code now reads as expired (it died before it was replaced), not "replaced".
    fresh = issue(db, keyring, w.employee.id)
    assert refused(db, keyring, got.code, w.hospital).code == "paycode_expired"
    db.clock.advance(seconds=179)
    assert scan(db, keyring, fresh.code, w.hospital).person_id == w.employee.id


def test_current_redraws_the_live_code_and_nothing_else(db, keyring):
    w = holder_with_ecard(db, keyring)

    def current():
        return db.run(lambda c: paycodes.current(c, keyring, db.clock(), holder_id=w.employee.id), write=False)

    with pytest.raises(NotFound) as exc:
        current()
    assert exc.value.code == "no_live_paycode"
    got = issue(db, keyring, w.employee.id)
    assert current().code == got.code and current().expires_at == got.expires_at
    scan(db, keyring, got.code, w.hospital)
    with pytest.raises(NotFound):
        current()
    got = issue(db, keyring, w.employee.id)
    db.clock.advance(seconds=181)
    with pytest.raises(NotFound):
        current()


def test_the_holders_screen_learns_what_became_of_its_code(db, keyring):
    """The /app screen polls the code it shows: used at a counter, replaced by a newer one, expired."""
    w = holder_with_ecard(db, keyring)

    def state(counter, holder=w.employee.id):
        return db.run(lambda c: paycodes.state(c, db.clock(), holder_id=holder, counter=counter), write=False)

    first = issue(db, keyring, w.employee.id)
    assert state(first.counter) == "live"
    second = issue(db, keyring, w.employee.id)
    assert (state(first.counter), state(second.counter)) == ("replaced", "live")
    scan(db, keyring, second.code, w.hospital)
    assert state(second.counter) == "used" and state(second.counter + 5) == "unknown"
    third = issue(db, keyring, w.employee.id)
    db.clock.advance(seconds=181)
    assert state(third.counter) == "expired"


def test_a_holder_without_an_ecard_gets_no_code(db, keyring):
    w = seed(db, keyring)
    with pytest.raises(Forbidden) as exc:
        issue(db, keyring, w.employee.id)
    assert exc.value.code == "ecard_required"


def test_a_guardian_shows_a_linked_childs_code(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    with pytest.raises(Forbidden) as exc:  # the child's card is not linked yet
        issue(db, keyring, w.employee.id, child.id)
    assert exc.value.code == "not_guardian"
    link_child(db, keyring, w.employee.id)
    got = issue(db, keyring, w.employee.id, child.id)
    assert (got.person_id, got.holder_id, got.card_kind) == (child.id, w.employee.id, "physical")
    done = scan(db, keyring, got.code, w.hospital)
    assert (done.person_id, done.holder_id, done.relation) == (child.id, w.employee.id, "guardian")


def test_someone_elses_code_is_refused_with_the_same_answer_whether_they_exist_or_not(db, keyring):
    w = holder_with_ecard(db, keyring)
    for other in (w.retiree.id, "P440300999999"):
        with pytest.raises(Forbidden) as exc:
            issue(db, keyring, w.employee.id, other)
        assert exc.value.code == "not_guardian"


def test_a_guardian_link_removed_after_issue_stops_the_childs_code(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    got = issue(db, keyring, w.employee.id, child.id)
    db.run(lambda c: c.execute(update(family_links).where(family_links.c.member_id == child.id).values(status="removed")))
    err = refused(db, keyring, got.code, w.hospital)
    assert (type(err), err.code) == (Forbidden, "paycode_guardian_unlinked")


def test_a_card_reported_lost_after_issue_refuses_its_code(db, keyring):
    w = holder_with_ecard(db, keyring)
    got = issue(db, keyring, w.employee.id)
    db.run(lambda c: cards.report_loss(c, db.clock(), card_id=got.card_id, holder_id=w.employee.id, actor="test"))
    err = refused(db, keyring, got.code, w.hospital)
    assert (type(err), err.code) == (Conflict, "paycode_card_not_active")
    with pytest.raises(Forbidden) as exc:  # and no new code without an active e-card
        issue(db, keyring, w.employee.id)
    assert exc.value.code == "ecard_required"


def test_another_regions_institution_needs_a_filing(db, keyring):
    w = holder_with_ecard(db, keyring)
    now = db.clock()
    qingdao, _ = db.run(lambda c: institutions.admit(c, now, code="H37020001", region="370200", name="青岛医院", kind="hospital",
                                                     level="level3", actor="test", secret="qd-secret"))
    got = issue(db, keyring, w.employee.id)
    err = refused(db, keyring, got.code, qingdao)
    assert (type(err), err.code) == (Forbidden, "paycode_other_region")
    db.run(lambda c: filings.file(c, now, person_id=w.employee.id, treatment_region="370200", filing_type="long_term",
                                  valid_from=date(2026, 1, 1), valid_to=None, actor="test"))
    assert scan(db, keyring, got.code, qingdao).insured_region == "440300"  # the refusal did not use it up


def test_a_child_code_uses_the_childs_ecard_when_it_has_one(db, keyring):
    w = seed(db, keyring, balance=RICH)
    child = guardian_ready(db, keyring, w.employee, 1)
    link_child(db, keyring, w.employee.id)
    authenticate(db, keyring, child.id, "小明", make_id_number("440301", date(2018, 6, 9), 9))
    child_ecard = db.run(lambda c: cards.issue_ecard(c, keyring, db.clock(), person_id=child.id, actor="test"))
    got = issue(db, keyring, w.employee.id, child.id)
    assert got.card_id == child_ecard.id and got.card_kind == "ecard"


def test_guessed_codes_are_counted_then_the_terminal_is_locked_until_the_window_passes(db, keyring):
    w = holder_with_ecard(db, keyring)
    real = issue(db, keyring, w.employee.id)
    bad_mac = forge(keyring, real.code, mac=f"{(int(paycode.parse(real.code).mac) + 1) % 10**7:07d}")
    bad_digit = real.code[:-1] + str((int(real.code[-1]) + 1) % 10)
    body = f"91{(int(paycode.parse(real.code).slot) + 1) % 10**8:08d}011234567"
    no_slot = body + str(paycode.damm(body))
    guesses = [bad_mac, bad_digit, no_slot, bad_mac, no_slot]
    codes = []
    for g in guesses:
        err = refused(db, keyring, g, w.hospital, "T1")
        codes.append(err.code)
    assert codes == ["paycode_unknown", "paycode_check_digit", "paycode_unknown", "paycode_unknown", "paycode_unknown"]
    assert type(refused(db, keyring, bad_mac, w.hospital, "T2")) is NotFound  # terminal T2 is not locked

    db.clock.advance(minutes=3)
    locked = refused(db, keyring, real.code, w.hospital, "T1")  # even the real code: the terminal is not looked at
    assert isinstance(locked, TooManyAttempts) and locked.code == "too_many_attempts"
    assert locked.retry_after == 7 * 60  # the fifth-newest guess leaves the 10-minute window in 7 minutes
    reasons = [r["reason"] for r in db.run(lambda c: paycodes.refusals(c, w.hospital.id), write=False)]
    assert reasons.count("paycode_unknown") == 5 and reasons.count("paycode_check_digit") == 1  # committed despite the errors

    db.clock.advance(minutes=7, seconds=-1)
    fresh = issue(db, keyring, w.employee.id)
    assert refused(db, keyring, fresh.code, w.hospital, "T1").code == "too_many_attempts"
    db.clock.advance(seconds=1)
    assert scan(db, keyring, fresh.code, w.hospital, "T1").person_id == w.employee.id  # cool-down over


def test_the_institution_limit_covers_all_its_terminals_and_scans_without_one(db, keyring):
    w = holder_with_ecard(db, keyring)
    real = issue(db, keyring, w.employee.id)
    bad = forge(keyring, real.code, residue_delta=-1)  # counter 0 was never issued
    for i in range(paycodes.INSTITUTION_LIMIT):
        assert refused(db, keyring, bad, w.hospital, f"T{i}" if i % 2 else None).code == "paycode_unknown"
    err = refused(db, keyring, real.code, w.hospital, "fresh-terminal")
    assert err.code == "too_many_attempts"
    assert scan(db, keyring, real.code, w.other_hospital).person_id == w.employee.id  # another institution is not locked


def test_a_malformed_code_is_an_input_error_and_is_not_recorded(db, keyring):
    w = holder_with_ecard(db, keyring)
    for text, code in (("123", "paycode_format"), ("13" + "0" * 18, "paycode_not_medical")):
        with pytest.raises(InputError) as exc:
            scan(db, keyring, text, w.hospital)
        assert exc.value.code == code
    assert db.run(lambda c: c.execute(select(paycode_refusals)).all(), write=False) == []


def test_a_code_100_refreshes_old_is_not_revived(db, keyring):
    w = holder_with_ecard(db, keyring)
    old = issue(db, keyring, w.employee.id)
    db.run(lambda c: c.execute(update(paycodes.S).where(paycodes.S.c.card_id == old.card_id).values(counter=100)))
    new = issue(db, keyring, w.employee.id)  # counter 101: the same last two digits as the old code's 1
    assert new.counter == 101 and new.code[10:12] == old.code[10:12] and new.code != old.code
    assert refused(db, keyring, old.code, w.hospital).code == "paycode_unknown"
    assert scan(db, keyring, new.code, w.hospital).person_id == w.employee.id


def test_concurrent_scans_of_one_code_exactly_one_wins(db, keyring, monkeypatch):
    w = holder_with_ecard(db, keyring)
    got = issue(db, keyring, w.employee.id)
    n = 6
    start = threading.Barrier(n)
    if db.dialect == "postgresql":
        # Hold every scan after it has read the code as live and before its UPDATE, so all of them race
        # on the conditional UPDATE itself (SQLite runs writers one at a time: nothing to interleave).
        inside = threading.Barrier(n, timeout=20)
        checks = paycodes._holder_refusal

        def racing(*a, **kw):
            inside.wait()
            return checks(*a, **kw)

        monkeypatch.setattr(paycodes, "_holder_refusal", racing)
    results: list = []

    def worker(i: int) -> None:
        start.wait()
        try:
            results.append(scan(db, keyring, got.code, w.hospital, f"T{i}"))
        except YibaoError as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if isinstance(r, paycodes.Consumed)]
    losses = [r.code for r in results if isinstance(r, YibaoError)]
    assert len(wins) == 1 and losses == ["paycode_used"] * (n - 1)
    rows = db.run(lambda c: c.execute(select(PC.c.status, PC.c.terminal_id)).all(), write=False)
    assert rows == [("used", wins[0].terminal_id)]
    assert [e.action for e in db.run(lambda c: audit.entries(c, "440300", 1), write=False)] == ["paycode.consume"]


def test_concurrent_refreshes_leave_one_live_code_with_distinct_counters(db, keyring):
    w = holder_with_ecard(db, keyring)
    n = 6
    start = threading.Barrier(n)
    results: list = []

    def worker() -> None:
        start.wait()
        results.append(issue(db, keyring, w.employee.id))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.counter for r in results) == list(range(1, n + 1))
    rows = db.run(lambda c: c.execute(select(PC.c.counter, PC.c.status).order_by(PC.c.counter)).all(), write=False)
    assert [s for _, s in rows] == ["replaced"] * (n - 1) + ["live"]
    newest = max(results, key=lambda r: r.counter)
    assert scan(db, keyring, newest.code, w.hospital).card_id == newest.card_id


def test_one_slot_per_card_and_slots_differ_between_cards(db, keyring):
    w = holder_with_ecard(db, keyring)
    ecard(db, keyring, w.retiree.id, name_of(2), id_number_of(2))
    a1, a2 = issue(db, keyring, w.employee.id), issue(db, keyring, w.employee.id)
    b = issue(db, keyring, w.retiree.id)
    assert a1.code[2:10] == a2.code[2:10] != b.code[2:10]
    adult = enrol_adult(db, keyring, n=20, name="王五")
    with pytest.raises(Forbidden):
        issue(db, keyring, adult.id)
