"""a refund of some items gives back part of each leg: what of each leg, which items, the remaining items' totals delta

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 10:45:00

Data: none moves (earlier refunds gave back whole parts: their legs stay null). Down: the columns go.
"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('items', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('legs', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('accumulator_delta', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_refunds', schema=None) as batch_op:
        batch_op.drop_column('accumulator_delta')
        batch_op.drop_column('legs')
        batch_op.drop_column('items')
