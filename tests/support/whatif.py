"""A small stored history for the policy what-if (services/care/whatif.py), settled through the services, and a new
Shenzhen 2026 policy whose effect on it is hand-computed in tests/services/care/test_whatif.py.

The history (Beijing days; clock from 2026-11-22 17:00):
- 11-22: the employee settles at the level-3 hospital and cancels it (left out); settles the same lines again (v1);
  the employee's child settles at the community centre; a Qingdao employee settles in Qingdao (another fund).
- 11-23: the employee settles at the community centre (v2); the retiree's inpatient stay (5,000.00) is settled.
- 11-24: the resident's inpatient stay (30,000.00) is settled.
The sample lines (tests/support/settlement.LINES) come to 375.00, of which 318.00 is in scope.

The new policy (each change one line of the file's content):
- employee outpatient pooling (not retired): deductible 300 → 400, level-3 ratio 0.50 → 0.60;
- retired employees' inpatient ratio 0.95 → 0.90;
- serious-illness threshold 20,000 → 10,000;
- no children's scheme (the child's settlement cannot be priced).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from tests.support.settlement import open_with_lines, settle
from tests.support.world import World, seed
from yibao.crypto.pii import Keyring
from yibao.domain.identity import make_id_number
from yibao.policies.loader import BUILTIN_DIR
from yibao.services.care import settlement, visits
from yibao.services.people import persons as people
from yibao.store.db import Database

SURGERY = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "阑尾切除术", "unit_price": "5000.00", "quantity": "1"}]
BIG_SURGERY = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "阑尾切除术", "unit_price": "5000.00", "quantity": "6"}]
DAY1, DAY2, DAY3 = date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)


@dataclass
class History:
    world: World
    child: people.Person
    v1: str
    v2: str
    cancelled: str
    child_setl: str
    retiree_setl: str
    resident_setl: str


def _inpatient(db: Database, inst, person_id: str, msgid: str, lines) -> dict:  # noqa: ANN001
    v = open_with_lines(db, inst, person_id, kind="inpatient", lines=lines)
    db.run(lambda c: visits.discharge(c, db.clock(), institution=inst, visit_id=v.id))
    return settle(db, inst, v.id, msgid, use=False)


def history(db: Database, keyring: Keyring) -> History:
    w = seed(db, keyring)
    qd = seed(db, keyring, region="370200")
    now = db.clock()
    child = db.run(lambda c: people.enrol(c, keyring, now, region="440300", id_number=make_id_number("440301", date(2019, 5, 6), 9),
                                          name="测试童", insurance_type="child", employment_status="none", guardian_id=w.employee.id))
    gone = settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "WI-0")
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=gone["setl_id"], actor="test"))
    v1 = settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "WI-1")
    kid = settle(db, w.other_hospital, open_with_lines(db, w.other_hospital, child.id).id, "WI-C", use=False)
    settle(db, qd.hospital, open_with_lines(db, qd.hospital, qd.employee.id).id, "WI-Q")
    db.clock.advance(days=1)
    v2 = settle(db, w.other_hospital, open_with_lines(db, w.other_hospital, w.employee.id).id, "WI-2")
    retiree = _inpatient(db, w.hospital, w.retiree.id, "WI-R", SURGERY)
    db.clock.advance(days=1)
    resident = _inpatient(db, w.hospital, w.resident.id, "WI-S", BIG_SURGERY)
    return History(w, child, v1["setl_id"], v2["setl_id"], gone["setl_id"], kid["setl_id"], retiree["setl_id"], resident["setl_id"])


def new_policy(folder: Path, year: int = 2026) -> Path:
    """The new Shenzhen 2026 file (see the module), written into ``folder``; ``year``: the same rules for another year."""
    data = yaml.safe_load((BUILTIN_DIR / "440300-2026.yaml").read_text(encoding="utf-8"))
    data["revision"] = 2
    data["year"] = year
    employee = data["schemes"]["employee"]
    general = employee["outpatient"][2]
    assert general["label_en"] == "employee outpatient pooling"
    general["deductible"] = "400"
    general["ratio"] = {**general["ratio"], "level3": "0.60"}
    retired = employee["inpatient"][0]
    assert retired["when"] == {"retired": True}
    retired["ratio"] = {level: "0.90" for level in retired["ratio"]}
    data["serious_illness"]["threshold"] = "10000"
    del data["schemes"]["child"]
    path = folder / f"440300-{year}-new.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path

