"""The policy what-if over a small stored history (tests/support/whatif.py), on SQLite and PostgreSQL: the change per
layer, insurance type and institution level hand-computed; the employee's second settlement changes only because the
first one's accumulators changed under the new policy; a settlement the new policy cannot price is counted and listed;
nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.whatif import DAY1, DAY2, DAY3, history, new_policy
from yibao.domain.errors import InputError
from yibao.policies.loader import builtin_policy, load_policy_file
from yibao.services.care import settlement, whatif
from yibao.store import tables

# Hand-computed, fen (the sample lines: 318.00 in scope).
# v1, employee at level 3 — old: deductible 300 → (318 − 300) × 0.50 = 9.00; new: deductible 400 takes all 318 → 0.
# v2, employee at the community centre (ratio 0.75 both times) — old: deductible used up by v1 → 318 × 0.75 = 238.50;
#     new: v1 used 318 of the new 400, so 82 is left: (318 − 82) × 0.75 = 177.00. The stored accumulators (300 used)
#     would have given (318 − 100) × 0.75 = 163.50: only the replay gives 177.00.
# Retiree inpatient 5,000 at level 3, deductible 600 — old (4,400) × 0.95 = 4,180.00; new × 0.90 = 3,960.00.
# Resident inpatient 30,000 at level 3, deductible 1,000, ratio 0.60 — pool (29,000) × 0.60 = 17,400.00 both times;
#     in-scope self-pay 12,600: old below the 20,000 serious-illness threshold → 0; new (12,600 − 10,000) × 0.60 = 1,560.00.
# The child's 238.50 (community, 0.75) cannot be priced: the new policy has no children's scheme.
V1_OLD, V1_NEW, V2_OLD, V2_NEW = 900, 0, 23850, 17700
RET_OLD, RET_NEW = 418000, 396000
RES_POOL, RES_SI_NEW = 1740000, 156000


def _replay(db, policy, start, end, **kw):
    return db.run(lambda c: whatif.replay(c, policy, start=start, end=end, **kw), write=False)


def _rows(db) -> dict:
    """Everything a what-if must leave alone."""
    def read(c):  # noqa: ANN001, ANN202
        return {t.name: sorted(map(tuple, c.execute(select(t)).all()), key=repr)
                for t in (tables.settlements, tables.accumulators, tables.transfers, tables.ledger_accounts, tables.audit_log)}
    return db.run(read, write=False)


def test_the_year_is_replayed_under_the_new_policy(db, keyring, tmp_path):
    h = history(db, keyring)
    policy = load_policy_file(new_policy(tmp_path))
    before = _rows(db)
    seen: list[tuple[int, int | None]] = []
    r = _replay(db, policy, DAY1, DAY3, progress=lambda done, total: seen.append((done, total)))
    assert _rows(db) == before  # read only

    layers = {row["layer"]: (row["old"], row["new"], row["change"]) for row in r.layer_rows()}
    pool_old, pool_new = V1_OLD + V2_OLD + RET_OLD + RES_POOL, V1_NEW + V2_NEW + RET_NEW + RES_POOL
    assert layers == {"pool_fund": (pool_old, pool_new, pool_new - pool_old), "serious_illness": (0, RES_SI_NEW, RES_SI_NEW),
                      "large_amount": (0, 0, 0), "other": (0, 0, 0), "assistance": (0, 0, 0)}
    assert (r.total.fund_old, r.total.fund_new, r.total.change) == (2182750, 2309700, 126950)
    assert r.repriced == 4 and r.persons_replayed == 4 and r.replayed_before_period == 0
    by_type = {g.key: (g.settlements, g.fund_old, g.fund_new) for g in r.insurance_types()}
    assert by_type == {"employee": (3, V1_OLD + V2_OLD + RET_OLD, V1_NEW + V2_NEW + RET_NEW), "resident": (1, RES_POOL, RES_POOL + RES_SI_NEW)}
    by_level = {g.key: (g.settlements, g.fund_old, g.fund_new) for g in r.levels()}
    assert by_level == {"community": (1, V2_OLD, V2_NEW), "level3": (3, V1_OLD + RET_OLD + RES_POOL, V1_NEW + RET_NEW + RES_POOL + RES_SI_NEW)}
    assert [(p.psn_no, p.settlements, p.change) for p in r.persons] == [
        (h.world.resident.id, 1, RES_SI_NEW), (h.world.retiree.id, 1, RET_NEW - RET_OLD), (h.world.employee.id, 2, -7050)]
    assert r.failed == 1 and r.failure_codes == {"scheme_not_in_policy": 1}
    (f,) = r.failures
    assert (f.setl_id, f.psn_no, f.fund_old, f.field, f.in_period) == (h.child_setl, h.child.id, 23850, "person.insurance_type", True)
    assert r.not_repriced == {"other_region": 1, "other_year": 0, "cancelled": 1, "insurance_refunded": 0, "pending": 0, "voided": 0}
    assert seen[-1] == (5, 5)  # streamed: the employee's two, the child's, the retiree's, the resident's (not the cancelled one)

    doc = r.as_dict()
    assert doc["fund_total"] == {"old": "21827.50", "new": "23097.00", "change": "1269.50"}
    assert doc["layers"][0] == {"layer": "pool_fund", "field": "hifp_pay", "zh": "统筹基金", "en": "pooled fund", "old": "21827.50",
                                "new": "21537.00", "change": "-290.50"}
    assert doc["by_level"][0]["layers"]["pool_fund"] == {"old": "238.50", "new": "177.00", "change": "-61.50"}


def test_a_later_period_replays_the_year_from_its_start(db, keyring, tmp_path):
    h = history(db, keyring)
    policy = load_policy_file(new_policy(tmp_path))
    r = _replay(db, policy, DAY2, DAY3, top=1)
    # v1 is before the period: replayed (its new accumulators give v2 its 82.00 deductible), not reported.
    assert r.replayed_before_period == 1 and r.repriced == 3 and r.failed == 0
    employee = {g.key: g for g in r.insurance_types()}["employee"]
    assert (employee.settlements, employee.fund_old, employee.fund_new) == (2, V2_OLD + RET_OLD, V2_NEW + RET_NEW)
    assert [p.psn_no for p in r.persons] == [h.world.resident.id]  # the largest change only
    assert r.not_repriced["cancelled"] == 0 and r.not_repriced["other_region"] == 0
    only_v2 = _replay(db, policy, DAY2, DAY2)
    assert {g.key: g.change for g in only_v2.levels()} == {"community": V2_NEW - V2_OLD, "level3": RET_NEW - RET_OLD}


def test_worker_processes_give_the_same_report(db, keyring, tmp_path, monkeypatch):
    history(db, keyring)
    policy = load_policy_file(new_policy(tmp_path))
    one = _replay(db, policy, DAY1, DAY3).as_dict()
    monkeypatch.setattr(whatif, "_BATCH", 1)  # a batch per person: the shares come back from both workers and are merged
    assert _replay(db, policy, DAY1, DAY3, workers=2).as_dict() == one


def test_a_refunded_insurance_part_is_left_out_a_refunded_cash_part_is_not(db, keyring, tmp_path):
    h = history(db, keyring)
    policy = load_policy_file(new_policy(tmp_path))
    # The retiree's fund share given back (the settlement is partial, its accumulators returned); the resident's cash only.
    db.run(lambda c: settlement.refund_part(c, db.clock(), setl_id=h.retiree_setl, part="insurance", refund_id="R1", actor="test"))
    db.run(lambda c: settlement.refund_part(c, db.clock(), setl_id=h.resident_setl, part="cash", refund_id="R2", actor="test"))
    r = _replay(db, policy, DAY1, DAY3)
    assert r.not_repriced["insurance_refunded"] == 1 and r.repriced == 3
    assert (r.total.fund_old, r.total.fund_new) == (V1_OLD + V2_OLD + RES_POOL, V1_NEW + V2_NEW + RES_POOL + RES_SI_NEW)


def test_the_policy_in_force_changes_nothing(db, keyring):
    history(db, keyring)
    r = _replay(db, builtin_policy("440300", 2026), DAY1, DAY3)
    assert r.total.change == 0 and r.persons == [] and r.failed == 0 and r.repriced == 5


def test_refusals_name_the_argument(db, keyring, tmp_path):
    policy = load_policy_file(new_policy(tmp_path))
    with pytest.raises(InputError) as exc:
        _replay(db, policy, DAY3, DAY1)
    assert (exc.value.field, exc.value.code) == ("from", "period_reversed")
    with pytest.raises(InputError) as exc:
        _replay(db, policy, DAY1, DAY3, region="370200")
    assert (exc.value.field, exc.value.code) == ("region", "policy_region_mismatch")
    with pytest.raises(InputError) as exc:
        _replay(db, policy, DAY1, DAY3, top=0)
    assert exc.value.field == "top"


def test_settlements_of_another_policy_year_are_counted_not_repriced(db, keyring, tmp_path):
    history(db, keyring)
    r = _replay(db, load_policy_file(new_policy(tmp_path, year=2027)), DAY1, DAY3)
    assert r.repriced == 0 and r.persons_replayed == 0 and r.total.fund_old == 0
    assert r.not_repriced == {"other_region": 1, "other_year": 5, "cancelled": 0, "insurance_refunded": 0, "pending": 0, "voided": 0}
