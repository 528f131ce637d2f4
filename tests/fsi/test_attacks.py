"""The gateway under attack and under fuzz, on SQLite and PostgreSQL: wrong types — each a refusal naming its field,
never an unexpected fault."""

from __future__ import annotations

import pytest

from tests.support import fsi


def no_fault(err_msg: str) -> str:
    assert "internal_error" not in err_msg, err_msg
    return err_msg


@pytest.mark.parametrize("cert_type", [[], ["03"], {}, {"a": "03"}])
def test_a_card_type_of_the_wrong_type_is_refused_by_name(hospital, cert_type):
    said = hospital.refused("1101", {"data": {"mdtrt_cert_type": cert_type, "mdtrt_cert_no": "D44030000011"}}, "mdtrt_cert_type")
    no_fault(said)


@pytest.mark.parametrize("serial", [[], ["1"], {}, {"a": "1"}])
def test_a_line_serial_of_the_wrong_type_is_refused_by_name(hospital, world, serial):
    vid = hospital.ok("2201", {"data": {"psn_no": world.employee.id}})["data"]["mdtrt_id"]
    line = {**fsi.FEEDETAIL[0], "mdtrt_id": vid, "feedetl_sn": serial}
    no_fault(hospital.refused("2204", {"feedetail": [line]}, "input.feedetail[0].feedetl_sn"))
