"""Admissions refuse what the platform cannot serve, in words naming the field (SQLite and PostgreSQL): a region
without a policy file, a level that does not fit the kind of institution; a suspension is kept with its time and reason."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import func, select

from yibao.domain.errors import InputError
from yibao.services.agency import institutions, policies
from yibao.services.agency import payment_institutions as pis
from yibao.store.tables import audit_log
from yibao.store.tables import institutions as I
from yibao.store.tables import payment_institutions as PI

UNKNOWN_ZH = "统筹区 999999 不存在（已配置：330200、370200、440300）"
UNKNOWN_EN = "region 999999 does not exist (configured: 330200, 370200, 440300)"


def _count(db, table) -> int:  # noqa: ANN001
    return db.run(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one(), write=False)


def _admit_institution(db, **kw):  # noqa: ANN001, ANN202
    args = {"code": "H99999901", "region": "440300", "name": "新医院", "kind": "hospital", "level": "level2", **kw}
    return db.run(lambda c: institutions.admit(c, db.clock(), actor="op", **args))


def _admit_pi(db, **kw):  # noqa: ANN001, ANN202
    args = {"pi_id": "newpay", "region": "440300", "name": "新支付", "kind": "wallet", "admission_ref": "准〔2026〕1号", **kw}
    return db.run(lambda c: pis.admit(c, db.clock(), actor="op", **args))


def test_the_known_regions_are_those_with_a_policy_file():
    assert policies.known_regions() == ["330200", "370200", "440300"]


def test_a_region_that_does_not_exist_is_refused_for_either_kind_of_institution_and_nothing_is_written(db):
    for admit in (_admit_institution, _admit_pi):
        with pytest.raises(InputError) as exc:
            admit(db, region="999999")
        assert (exc.value.field, exc.value.code, exc.value.message_zh, exc.value.message_en) == ("region", "unknown_region", UNKNOWN_ZH,
                                                                                                 UNKNOWN_EN)
        with pytest.raises(InputError) as exc:
            admit(db, region="4403")
        assert (exc.value.field, exc.value.code) == ("region", "invalid_region")
    assert (_count(db, I), _count(db, PI), _count(db, audit_log)) == (0, 0, 0)
    assert _admit_institution(db, region="370200")[0].region == "370200"
    assert _admit_pi(db, region="330200").region == "330200"


@pytest.mark.parametrize(("kind", "level", "zh", "en"), [
    ("pharmacy", "level2", "药店的级别应为“药店”（pharmacy）；“二级”（level2）是医院的级别，药店不能选",
     "a pharmacy's level must be pharmacy; level2 is a hospital's level"),
    ("hospital", "pharmacy", "医院的级别应为社区（community）、一级（level1）、二级（level2）、三级（level3）之一；“药店”（pharmacy）只用于药店",
     "a hospital's level must be community, level1, level2 or level3; pharmacy is only for a pharmacy"),
    ("hospital", "level9", "级别应为医院的社区（community）、一级（level1）、二级（level2）、三级（level3）之一，或药店的“药店”（pharmacy）",
     "the level must be a hospital's community, level1, level2 or level3, or pharmacy for a pharmacy"),
])
def test_a_level_that_does_not_fit_the_kind_is_refused_saying_which_fits(db, kind, level, zh, en):
    with pytest.raises(InputError) as exc:
        _admit_institution(db, kind=kind, level=level)
    assert (exc.value.field, exc.value.code, exc.value.message_zh, exc.value.message_en) == ("level", "invalid_level", zh, en)
    assert _count(db, I) == 0


def test_a_suspension_is_kept_with_its_time_and_reason_and_the_latest_one_is_shown(db, clock):
    _admit_pi(db)
    _admit_pi(db, pi_id="otherpay")
    first = clock()
    db.run(lambda c: pis.suspend(c, first, pi_id="newpay", reason="  风险事件  ", actor="operator:a"))
    clock.advance(hours=1)
    _admit_pi(db, admission_ref="准〔2026〕2号")  # admitted again …
    clock.advance(hours=1)
    second = clock()
    db.run(lambda c: pis.suspend(c, second, pi_id="newpay", reason="整改未完成", actor="operator:b"))  # … and suspended again
    listed = db.run(lambda c: pis.list_all(c), write=False)
    shown = db.run(lambda c: pis.suspensions(c, listed), write=False)
    assert list(shown) == ["newpay"]  # otherpay is admitted: no suspension to show
    s = shown["newpay"]
    assert (s.at, s.reason, s.actor) == (second, "整改未完成", "operator:b") and s.at - first == timedelta(hours=2)
    admitted = db.run(lambda c: pis.get(c, "newpay"), write=False).admitted_at  # the admission time stays the readmission's
    assert (admitted if admitted.tzinfo else admitted.replace(tzinfo=timezone.utc)) == first + timedelta(hours=1)


def test_a_suspension_reason_longer_than_the_field_is_refused(db):
    _admit_pi(db)
    with pytest.raises(InputError) as exc:
        db.run(lambda c: pis.suspend(c, db.clock(), pi_id="newpay", reason="x" * 201, actor="op"))
    assert exc.value.field == "reason"
    assert db.run(lambda c: pis.get(c, "newpay"), write=False).status == "admitted"
