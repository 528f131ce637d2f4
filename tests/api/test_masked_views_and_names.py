"""Beside a masked ID number, no birth date (issue 11, point 3): the hidden middle of a Chinese ID number IS the
birth date, and the last character shown is a checksum over all of it — `GET /api/v1/patient/me` gave the number
back. And names carry nothing invisible: a bidi override (U+202E) or a zero-width joiner is refused, naming the
field, wherever a name is typed — enrolment, real name, family, an institution's admission. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.api import OPERATOR, his, key, login, post
from tests.support.identity import id_number_of, name_of

BIDI = "张\u202e三"  # RIGHT-TO-LEFT OVERRIDE: shown reversed from here on
ZWJ = "王\u200d五"  # ZERO WIDTH JOINER: looks like 王五, is not


def _no_birth_date(view: dict, born: str) -> None:
    assert "certno" not in view or view["certno"].count("*") == 10  # the number masked (a counter's look-up has none at all) ...
    assert "birth_date" not in view and "age" not in view  # ... and nothing beside it gives the hidden part back
    assert born not in repr(view) and born.replace("-", "") not in repr(view)


def test_the_holders_views_beside_a_masked_number_carry_no_birth_date(client, world):
    me = login(client, world.phones["employee"])
    born = world.employee.birth_date.isoformat()
    _no_birth_date(client.get("/api/v1/patient/me", headers=me).json(), born)
    _no_birth_date(client.get(f"/api/v1/patient/persons/{world.employee.id}", headers=me).json(), born)


def test_the_institutions_person_lookup_carries_no_birth_date_either(client, world):
    r = client.post("/api/v1/his/persons/lookup", json={"credential_type": "id_number", "credential_no": id_number_of(1)}, headers=his(world))
    assert r.status_code == 200, r.text
    _no_birth_date(r.json(), world.employee.birth_date.isoformat())


def _invisible(r, field: str, point: str) -> None:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == (field, "invisible_character"), err
    assert point in err["message_zh"] and point in err["message_en"]


@pytest.mark.parametrize("name, point", [(BIDI, "U+202E"), (ZWJ, "U+200D"), ("李\u2028四", "U+2028"), ("赵\u200b六", "U+200B")])
def test_enrolment_refuses_a_name_with_an_invisible_character(client, world, name, point):
    r = post(client, "/api/v1/admin/persons", {"region": "440300", "id_number": id_number_of(7), "name": name, "insurance_type": "resident"},
             OPERATOR)
    _invisible(r, "name", point)


def test_real_name_and_family_refuse_an_invisible_character_naming_the_field(client, world):
    me = login(client, world.phones["employee"])
    _invisible(post(client, "/api/v1/patient/identity/real-name", {"name": name_of(1)[:1] + "\u202e" + name_of(1)[1:],
                                                                  "id_number": id_number_of(1)}, me), "name", "U+202E")
    _invisible(post(client, "/api/v1/patient/family/mutual-aid", {"relation": "spouse", "id_number": id_number_of(2), "name": ZWJ}, me),
               "name", "U+200D")
    _invisible(post(client, "/api/v1/patient/family/child-cards", {"card_no": "CHILD0001", "child_name": BIDI}, me), "child_name", "U+202E")


def test_an_institutions_name_carries_nothing_invisible(client, world):
    r = post(client, "/api/v1/admin/institutions", {"code": "H44030077", "region": "440300", "name": "人民医院\u202e", "kind": "hospital",
                                                     "level": "level1"}, OPERATOR)
    _invisible(r, "name", "U+202E")
    r = post(client, "/api/v1/admin/payment-institutions", {"id": "pay-x", "region": "440300", "name": "\u2066支付\u2069", "kind": "wallet",
                                                             "admission_ref": "准入〔2026〕1号"}, OPERATOR)
    _invisible(r, "name", "U+2066")
    assert key()  # fresh keys each time


def test_a_plain_name_with_a_middle_dot_is_still_a_name(client, world):
    """Names of minorities and foreigners carry a middle dot (·, U+00B7): a visible character, accepted."""
    r = post(client, "/api/v1/admin/persons", {"region": "440300", "id_number": id_number_of(8), "name": "阿依古丽·买买提",
                                               "insurance_type": "resident"}, OPERATOR)
    assert r.status_code == 201, r.text
