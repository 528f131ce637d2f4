"""reconciliation with the payment institutions: the daily runs, their differences and resolutions, the pool of the
cut-off minutes before midnight, and legs matched by another day's statement (services/reconciliation)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 02:00:00

Data: new tables only. Down: they are dropped with what they hold (the resolutions' money moves stay in the ledger and
the audit trail).
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconciliation_offday',
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('statement_day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'], name=op.f('fk_reconciliation_offday_payment_institution_id_payment_institutions')),
    sa.PrimaryKeyConstraint('payment_institution_id', 'kind', 'key', name=op.f('pk_reconciliation_offday')),
    info={'owner': 'services.reconciliation'}
    )
    with op.batch_alter_table('reconciliation_offday', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_offday_region'), ['region'], unique=False)

    op.create_table('reconciliation_pool',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('side', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('item', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'], name=op.f('fk_reconciliation_pool_payment_institution_id_payment_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_pool')),
    sa.UniqueConstraint('payment_institution_id', 'day', 'side', 'kind', 'key', name=op.f('uq_reconciliation_pool_payment_institution_id_day_side_kind_key')),
    info={'owner': 'services.reconciliation'}
    )
    with op.batch_alter_table('reconciliation_pool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_pool_region'), ['region'], unique=False)

    op.create_table('reconciliation_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('statement_trades', sa.Integer(), nullable=False),
    sa.Column('statement_trade_fen', sa.BigInteger(), nullable=False),
    sa.Column('statement_refunds', sa.Integer(), nullable=False),
    sa.Column('statement_refund_fen', sa.BigInteger(), nullable=False),
    sa.Column('platform_legs', sa.Integer(), nullable=False),
    sa.Column('platform_fen', sa.BigInteger(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('pooled', sa.Integer(), nullable=False),
    sa.Column('carried', sa.Integer(), nullable=False),
    sa.Column('differences', sa.Integer(), nullable=False),
    sa.Column('open_differences', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'], name=op.f('fk_reconciliation_runs_payment_institution_id_payment_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs')),
    sa.UniqueConstraint('payment_institution_id', 'day', name=op.f('uq_reconciliation_runs_payment_institution_id_day')),
    info={'owner': 'services.reconciliation'}
    )
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_runs_region'), ['region'], unique=False)

    op.create_table('reconciliation_differences',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('cls', sa.String(length=24), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=False),
    sa.Column('institution_ref', sa.String(length=64), nullable=True),
    sa.Column('institution_fen', sa.BigInteger(), nullable=True),
    sa.Column('institution_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('platform_fen', sa.BigInteger(), nullable=True),
    sa.Column('platform_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leg_status', sa.String(length=10), nullable=True),
    sa.Column('platform_state', sa.String(length=24), nullable=True),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('refund_id', sa.String(length=32), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('resolution', sa.String(length=24), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'], name=op.f('fk_reconciliation_differences_payment_institution_id_payment_institutions')),
    sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'], name=op.f('fk_reconciliation_differences_run_id_reconciliation_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_differences')),
    sa.UniqueConstraint('payment_institution_id', 'day', 'cls', 'kind', 'key', name=op.f('uq_reconciliation_differences_payment_institution_id_day_cls_kind_key')),
    info={'owner': 'services.reconciliation'}
    )
    with op.batch_alter_table('reconciliation_differences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_differences_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconciliation_differences_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_reconciliation_differences_status', ['status', 'day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reconciliation_differences', schema=None) as batch_op:
        batch_op.drop_index('ix_reconciliation_differences_status')
        batch_op.drop_index(batch_op.f('ix_reconciliation_differences_run_id'))
        batch_op.drop_index(batch_op.f('ix_reconciliation_differences_region'))

    op.drop_table('reconciliation_differences')
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_runs_region'))

    op.drop_table('reconciliation_runs')
    with op.batch_alter_table('reconciliation_pool', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_pool_region'))

    op.drop_table('reconciliation_pool')
    with op.batch_alter_table('reconciliation_offday', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_offday_region'))

    op.drop_table('reconciliation_offday')
