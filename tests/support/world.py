"""Shared set-up for storage and API tests: a region's institutions and a few insured people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tests.support import catalogue
from yibao.crypto.pii import Keyring
from yibao.domain.identity import make_id_number
from yibao.services.agency import institutions
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit, contributions
from yibao.services.people import account_credits
from yibao.services.people import persons as people
from yibao.store.db import Database


@dataclass
class World:
    hospital: Institution
    hospital_credential: str
    other_hospital: Institution
    other_credential: str
    pharmacy: Institution
    employee: people.Person
    retiree: people.Person
    resident: people.Person
    phones: dict[str, str]


def credit(db: Database, person_id: str, amount: int, client_id: str) -> int:
    """Credit a personal account as the platform does: the money collected into its region's contributions first
    (under ``client_id`` as the collection's reference), then drawn; one operator (at or below the threshold)."""
    now = db.clock()

    def work(c):  # noqa: ANN001, ANN202
        region = people.require(c, person_id).region
        contributions.record_collection(c, now, region=region, amount=amount, reference=f"test:{client_id}", actor="test")
        return account_credits.credit_account(c, now, person_id=person_id, amount=amount, client_id=client_id, actor="test")
    return db.run(work)


def sign_pilots(db: Database, *institution_ids: str) -> None:
    """Each institution may take every mobile-mode payment (a pilot agreement recorded, services/agency/pilots.py)."""
    from yibao.services.agency import pilots

    for code in institution_ids:
        db.run(lambda c, code=code: pilots.record_signed(c, db.clock(), institution_id=code, modes=pilots.rules.MODES, actor="test"))


def seed(db: Database, keyring: Keyring, region: str = "440300", balance: int = 300000) -> World:
    audit.use_key(db, keyring)  # the platform keys its audit chain with the master key (create_app does too)
    now = db.clock()
    h, hs = db.run(lambda c: institutions.admit(c, now, code=f"H{region}01", region=region, name="人民医院", kind="hospital",
                                                level="level3", actor="test", secret="hospital-secret"))
    o, os_ = db.run(lambda c: institutions.admit(c, now, code=f"H{region}02", region=region, name="社区健康服务中心", kind="hospital",
                                                 level="community", actor="test", secret="other-secret"))
    ph, _ = db.run(lambda c: institutions.admit(c, now, code=f"P{region}01", region=region, name="大药房", kind="pharmacy",
                                                level="pharmacy", actor="test", secret="pharmacy-secret"))
    catalogue.load(db, region, [h, o, ph])  # the platform decides each fee line's class from it
    area = region[:4] + "01"
    phones = {"employee": "13800000001", "retiree": "13800000002", "resident": "13800000003"}

    def enrol(n: int, kind: str, status: str, phone: str, tier: int | None):  # noqa: ANN202
        return db.run(lambda c: people.enrol(c, keyring, now, region=region, id_number=make_id_number(area, date(1960 + n * 7, 3, 1 + n), n),
                                             name=f"测试{n}", insurance_type=kind, employment_status=status, tier=tier, phone=phone))

    tier = 1 if region == "440300" else None
    emp = enrol(1, "employee", "employed", phones["employee"], tier)
    ret = enrol(2, "employee", "retired", phones["retiree"], tier)
    res = enrol(3, "resident", "none", phones["resident"], None)
    for person in (emp, ret):
        credit(db, person.id, balance, f"open:{person.id}")
    sign_pilots(db, h.id, o.id, ph.id)
    return World(h, f"{h.id}.hospital-secret", o, f"{o.id}.other-secret", ph, emp, ret, res, phones)
