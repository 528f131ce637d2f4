"""item categories: a catalogue entry's item categories (catalogue_entries.item_category: implant | imported |
negotiated, |-separated) and on each fee line the categories the platform decided from its entry (fee_lines.item_category),
so a policy's item_ratios can pay those lines at their own fund ratio (docs/engine.md step 4)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 08:10:00

Data: none moves; both columns are null on what was stored before (no categories: priced as before).
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('catalogue_entries', 'fee_lines'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('item_category', sa.String(length=80), nullable=True))


def downgrade() -> None:
    for table in ('fee_lines', 'catalogue_entries'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('item_category')
