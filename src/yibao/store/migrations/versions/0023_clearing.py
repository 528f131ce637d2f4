"""monthly clearing (3203–3205A): institutions' clearing applications, their payees and the payment instructions to the
agency's bank; the months netted between two regions (3260–3262) (services/clearing)

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-07 02:00:00

Data: new tables only. Down: the tables go (applications, payees and instructions are lost; the ledger's clearing
transfers stay, as every transfer does).
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'clearing_applications',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('institution_id', sa.String(length=20), nullable=False),
        sa.Column('clr_type', sa.String(length=3), nullable=False),
        sa.Column('clr_way', sa.String(length=3), nullable=False),
        sa.Column('setlym', sa.String(length=6), nullable=False),
        sa.Column('active_key', sa.String(length=40), nullable=True),
        sa.Column('psntime', sa.Integer(), nullable=False),
        sa.Column('medfee_sumamt', sa.BigInteger(), nullable=False),
        sa.Column('med_sumfee', sa.BigInteger(), nullable=False),
        sa.Column('fund_appy_sum', sa.BigInteger(), nullable=False),
        sa.Column('cash_payamt', sa.BigInteger(), nullable=False),
        sa.Column('acct_pay', sa.BigInteger(), nullable=False),
        sa.Column('begndate', sa.Date(), nullable=False),
        sa.Column('enddate', sa.Date(), nullable=False),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('fund_paid', sa.BigInteger(), nullable=True),
        sa.Column('account_paid', sa.BigInteger(), nullable=True),
        sa.Column('deposit', sa.BigInteger(), nullable=True),
        sa.Column('recoveries', sa.BigInteger(), nullable=True),
        sa.Column('payable', sa.BigInteger(), nullable=True),
        sa.Column('approved_by', sa.String(length=80), nullable=True),
        sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('psntime >= 0 AND medfee_sumamt >= 0 AND med_sumfee >= 0 AND fund_appy_sum >= 0 AND cash_payamt >= 0 AND acct_pay >= 0',
                           name=op.f('ck_clearing_applications_declared_amounts')),
        sa.CheckConstraint('payable IS NULL OR (payable >= 0 AND deposit >= 0 AND recoveries >= 0)',
                           name=op.f('ck_clearing_applications_payable_amounts')),
        sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_clearing_applications_institution_id_institutions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_clearing_applications')),
        sa.UniqueConstraint('active_key', name=op.f('uq_clearing_applications_active_key')),
    )
    with op.batch_alter_table('clearing_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clearing_applications_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_clearing_applications_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_clearing_applications_setlym'), ['setlym'], unique=False)

    op.create_table(
        'clearing_payees',
        sa.Column('institution_id', sa.String(length=20), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('account_no', sa.String(length=32), nullable=False),
        sa.Column('account_name', sa.String(length=200), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_clearing_payees_institution_id_institutions')),
        sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_clearing_payees')),
    )
    with op.batch_alter_table('clearing_payees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clearing_payees_region'), ['region'], unique=False)

    op.create_table(
        'clearing_payments',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('application_id', sa.String(length=32), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('bank_id', sa.String(length=40), nullable=False),
        sa.Column('payee_account', sa.String(length=32), nullable=False),
        sa.Column('payee_name', sa.String(length=200), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('bank_ref', sa.String(length=64), nullable=True),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_clearing_payments_positive')),
        sa.ForeignKeyConstraint(['application_id'], ['clearing_applications.id'],
                                name=op.f('fk_clearing_payments_application_id_clearing_applications')),
        sa.ForeignKeyConstraint(['bank_id'], ['payment_institutions.id'], name=op.f('fk_clearing_payments_bank_id_payment_institutions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_clearing_payments')),
        sa.UniqueConstraint('application_id', 'attempt', name=op.f('uq_clearing_payments_application_id_attempt')),
    )
    with op.batch_alter_table('clearing_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clearing_payments_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_clearing_payments_region'), ['region'], unique=False)


    op.create_table(
        'interregion_clearings',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('region_a', sa.String(length=6), nullable=False),
        sa.Column('region_b', sa.String(length=6), nullable=False),
        sa.Column('setlym', sa.String(length=6), nullable=False),
        sa.Column('active_key', sa.String(length=20), nullable=True),
        sa.Column('a_owes_b', sa.BigInteger(), nullable=False),
        sa.Column('b_owes_a', sa.BigInteger(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('rolled_back_by', sa.String(length=80), nullable=True),
        sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('region_a < region_b', name=op.f('ck_interregion_clearings_ordered_pair')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_interregion_clearings')),
        sa.UniqueConstraint('active_key', name=op.f('uq_interregion_clearings_active_key')),
    )


def downgrade() -> None:
    op.drop_table('interregion_clearings')
    op.drop_table('clearing_payments')
    op.drop_table('clearing_payees')
    op.drop_table('clearing_applications')
