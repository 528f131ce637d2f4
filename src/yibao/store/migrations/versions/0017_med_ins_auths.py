"""med-ins authorisations: a holder's authorisation for a wallet (authCode → pay_auth_no), bound to the order it pays
and to the wallet's mixed order (WeChat Pay 医保支付, docs/channels.md "Medical-insurance orders")

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('med_ins_auths',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('pay_auth_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('med_inst_no', sa.String(length=20), nullable=True),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('mix_trade_no', sa.String(length=64), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_med_ins_auths_person_id_persons')),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'],
                            name=op.f('fk_med_ins_auths_payment_institution_id_payment_institutions')),
    sa.ForeignKeyConstraint(['order_id'], ['payment_orders.id'], name=op.f('fk_med_ins_auths_order_id_payment_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_med_ins_auths')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_med_ins_auths_code_hash')),
    sa.UniqueConstraint('pay_auth_hash', name=op.f('uq_med_ins_auths_pay_auth_hash')),
    sa.UniqueConstraint('order_id', name=op.f('uq_med_ins_auths_order_id')),
    sa.UniqueConstraint('mix_trade_no', name=op.f('uq_med_ins_auths_mix_trade_no')),
    )
    op.create_index(op.f('ix_med_ins_auths_region'), 'med_ins_auths', ['region'], unique=False)
    op.create_table('wallet_nonces',
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('payment_institution_id', 'nonce', name=op.f('pk_wallet_nonces'))
    )
    op.create_index(op.f('ix_wallet_nonces_expires_at'), 'wallet_nonces', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_wallet_nonces_expires_at'), table_name='wallet_nonces')
    op.drop_table('wallet_nonces')
    op.drop_index(op.f('ix_med_ins_auths_region'), table_name='med_ins_auths')
    op.drop_table('med_ins_auths')
