"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from yibao.store import migrate
from yibao.store.tables import metadata


def test_upgrade_from_empty_matches_the_tables(db):
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    assert migrate.current(db) == migrate.head()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"tables and migrations differ; add a revision (yibao.store.migrate.revision): {diff}"
    migrate.upgrade(db)  # a second run is a no-op
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it
