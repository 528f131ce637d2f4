"""the loose ends of the institutions' real protocols (issue 14): when the institution accepted an order's cash
request (payment_orders.cash_accepted_at)

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07 02:00:00

Data: existing orders get NULL (never recorded as accepted): an order in doubt keeps the short grace it had. Down: the
column goes; the code before knew no acceptance.
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cash_accepted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.drop_column('cash_accepted_at')
