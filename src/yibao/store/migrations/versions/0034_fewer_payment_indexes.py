"""fewer indexes on the tables every payment writes: the region ones (no query selects those rows by region alone) and
three whose column leads a unique constraint already

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 14:00:00

Why: PostgreSQL writes an entry in every index for each row version an insert or a non-HOT update makes, and
payment_orders (ten indexes) is updated three times per one-code payment, never HOT (its status is indexed). Nine
indexes fewer: ~35 index entries fewer per payment (issue 13, docs/benchmarks.md).
Data: none moves. Down: the indexes come back.
"""
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

_DROPPED = (
    ('ix_transfers_region', 'transfers', ['region']),
    ('ix_visits_region', 'visits', ['region']),
    ('ix_fee_lines_region', 'fee_lines', ['region']),
    ('ix_fee_lines_visit_id', 'fee_lines', ['visit_id']),  # uq_fee_lines_visit_id_feedetl_sn leads with it
    ('ix_settlements_region', 'settlements', ['region']),
    ('ix_settlements_institution_id', 'settlements', ['institution_id']),  # uq_settlements_institution_id_msgid
    ('ix_presences_region', 'presences', ['region']),
    ('ix_payment_orders_region', 'payment_orders', ['region']),
    ('ix_payment_orders_institution_id', 'payment_orders', ['institution_id']),  # uq_payment_orders_institution_id_request_key
)


def upgrade() -> None:
    for name, table, _ in _DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in _DROPPED:
        op.create_index(name, table, columns)
