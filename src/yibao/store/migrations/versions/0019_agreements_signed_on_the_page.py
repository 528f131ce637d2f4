"""password-free agreements are signed by the holder on the institution's page: a pending agreement row (no
institution agreement number yet) and when its signing was started

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 23:30:00

Data: existing rows are all active (signed during a first payment, as the code did before): unchanged. Down: pending
rows are deleted (the old code knew no pending agreement and would sign them again on a first payment), then the
column goes and agreement_no is NOT NULL again.
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_agreements', schema=None) as batch_op:
        batch_op.alter_column('agreement_no', existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column('signing_started_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM channel_agreements WHERE agreement_no IS NULL")
    with op.batch_alter_table('channel_agreements', schema=None) as batch_op:
        batch_op.drop_column('signing_started_at')
        batch_op.alter_column('agreement_no', existing_type=sa.String(length=64), nullable=False)
