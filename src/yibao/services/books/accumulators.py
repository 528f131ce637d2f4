"""A person's running totals for the year (deductible used, fund paid per layer, admissions)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.bill import ACCUMULATOR_FIELDS, Accumulators
from yibao.store.sql import Sql
from yibao.store.tables import accumulators as T

_COLUMNS = ", ".join(ACCUMULATOR_FIELDS)
_LOCK = Sql(f"SELECT {_COLUMNS}, admissions FROM accumulators WHERE person_id = :person_id AND year = :year {{lock}}")
# A person's first settlement of the year makes the row (most of a day's patients, in a busy region): prepared, and
# answering whether it was made — a row made here is this transaction's (locked) and all zeros, so it is not read back.
_CREATE = Sql(f"""INSERT INTO accumulators (region, person_id, year, admissions, {_COLUMNS})
                 VALUES (:region, :person_id, :year, 0, {", ".join("0" for _ in ACCUMULATOR_FIELDS)})
                 ON CONFLICT DO NOTHING RETURNING person_id""")
_ADD = Sql("UPDATE accumulators SET " + ", ".join(f"{f} = {f} + :{f}" for f in ACCUMULATOR_FIELDS)
           + " WHERE person_id = :person_id AND year = :year")


def lock(conn: Connection, region: str, person_id: str, year: int) -> tuple[Accumulators, int]:
    """The year's totals and admission count, locked for this transaction (one settlement per person at a time)."""
    row = _LOCK(conn, {"person_id": person_id, "year": year}).first()
    if row is None:  # the person's first visit this year
        if _CREATE(conn, {"region": region, "person_id": person_id, "year": year}).first() is not None:
            return Accumulators(), 0
        row = _LOCK(conn, {"person_id": person_id, "year": year}).first()  # made by a concurrent settlement: wait for it
    return Accumulators(*(int(v) for v in row[:-1])), int(row[-1])


def read(conn: Connection, person_id: str, year: int) -> Accumulators:
    row = conn.execute(select(T).where(T.c.person_id == person_id, T.c.year == year)).first()
    return Accumulators() if row is None else Accumulators(*(getattr(row, f) for f in ACCUMULATOR_FIELDS))


def add(conn: Connection, person_id: str, year: int, delta: Accumulators) -> None:
    """Add ``delta`` (or, to cancel, its negation) with one UPDATE; values never drop below zero."""
    if any(delta.as_dict().values()):
        _ADD(conn, {"person_id": person_id, "year": year, **delta.as_dict()})


def count_admission(conn: Connection, region: str, person_id: str, year: int) -> int:
    """Record an admission; returns its number this year (the deductible falls for repeat admissions)."""
    _, admissions = lock(conn, region, person_id, year)
    conn.execute(update(T).where(T.c.person_id == person_id, T.c.year == year).values(admissions=admissions + 1))
    return admissions + 1


def uncount_admission(conn: Connection, region: str, person_id: str, year: int) -> None:
    """An admission undone (2404 or its 2601): it never happened, so the year's count falls back by one whichever stay it
    was — the next admission's number (and its deductible) counts only the stays that stand. The caller renumbers the
    later stays not yet settled (services/care/visits.cancel_visit)."""
    _, admissions = lock(conn, region, person_id, year)
    if admissions > 0:
        conn.execute(update(T).where(T.c.person_id == person_id, T.c.year == year).values(admissions=admissions - 1))
