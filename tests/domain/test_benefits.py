"""The rules of a benefit batch (pure): amounts above zero, one way of naming the person, the CSV list, the summary."""

from __future__ import annotations

import pytest

from yibao.domain import benefits as rules
from yibao.domain.errors import InputError


def test_amounts_are_fen_above_zero_and_each_refusal_names_its_row():
    assert rules.amount_of(rules.Row(1, "P1", None, "12.5")) == 12_50
    for text, code in (("0", "amount_not_positive"), ("0.00", "amount_not_positive"), ("-1", "amount_not_positive"),
                       ("1.234", "too_many_decimals"), ("", "empty"), ("x", "invalid_number")):
        refusal = rules.amount_of(rules.Row(7, "P1", None, text))
        assert isinstance(refusal, rules.Refusal) and (refusal.row, refusal.field, refusal.code) == (7, "amount", code), text
    assert rules.who_of(rules.Row(3, "P1", "440301198001010011", "1")).code == "person_unnamed"
    assert rules.who_of(rules.Row(3, None, None, "1")).code == "person_unnamed" and rules.who_of(rules.Row(3, "P1", None, "1")) is None


def test_the_csv_list_numbers_rows_after_the_header_and_refuses_a_header_it_does_not_know():
    rows = rules.parse_csv("\ufeffpsn_no,id_number,amount\nP1,,10.00\n\n,440301198001010011, 5 \n")
    assert rows == [rules.Row(1, "P1", None, "10.00"), rules.Row(3, None, "440301198001010011", "5")]
    for bad in ("name,amount\nx,1\n", "psn_no\nP1\n", ""):
        with pytest.raises(InputError) as e:
            rules.parse_csv(bad)
        assert e.value.field == "file"
    with pytest.raises(InputError) as e:
        rules.parse_csv("psn_no,amount\n" + "P" * 200_000 + ",1\n")  # a field past the csv module's limit
    assert e.value.code == "invalid_csv"


def test_the_summary_adds_up_to_the_fen_by_outcome():
    got = rules.summary([("credited", 100), ("returned", 1), ("sending", 2), ("accepted", 3), ("credited", 5)])
    assert got == {"rows": 5, "total": "1.11", "credited": {"count": 2, "amount": "1.05"}, "returned": {"count": 1, "amount": "0.01"},
                   "open": {"count": 2, "amount": "0.05"}}
    assert rules.digest("民政局", "津贴", [(1, "P1", 100)]) != rules.digest("民政局", "津贴", [(1, "P1", 101)])
