"""the loose ends of the institutions' real protocols (issue 14): when the institution accepted an order's cash
request (payment_orders.cash_accepted_at); the generation of a password-free agreement (channel_agreements.generation),
so signing again after a termination is a new agreement number; whether a WeChat Pay merchant's papay template
requires the 预扣费通知 before each deduction (channel_configs.deduct_notice)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 02:00:00

Data: existing orders get NULL (never recorded as accepted): an order in doubt keeps the short grace it had; existing
agreements are generation 1 (their number is the first generation's). Down: the columns go; the code before knew no
acceptance, and a later generation's row keeps its number (the old code reads the stored number, never derives it
again). A wxpay configuration gets deduct_notice true — the connector sent the notice before every deduction until now —
and the others NULL.
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cash_accepted_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('channel_agreements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generation', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('channel_configs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deduct_notice', sa.Boolean(), nullable=True))
    op.execute(sa.text("UPDATE channel_configs SET deduct_notice = :yes WHERE connector = 'wxpay'").bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table('channel_configs', schema=None) as batch_op:
        batch_op.drop_column('deduct_notice')
    with op.batch_alter_table('channel_agreements', schema=None) as batch_op:
        batch_op.drop_column('generation')
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.drop_column('cash_accepted_at')
