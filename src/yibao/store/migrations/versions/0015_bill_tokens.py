"""bill tokens: a bill published over the national interface's mobile payment (6201) keeps its payToken's hash and
the hospital's order number (medOrgOrd)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 17:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'  # after the exchange files
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bill_tokens',
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('med_org_ord', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['payment_orders.id'], name=op.f('fk_bill_tokens_order_id_payment_orders')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_bill_tokens_institution_id_institutions')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_bill_tokens'))
    )
    op.create_index(op.f('ix_bill_tokens_region'), 'bill_tokens', ['region'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bill_tokens_region'), table_name='bill_tokens')
    op.drop_table('bill_tokens')
