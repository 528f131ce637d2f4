"""benefits onto the card (一卡多用, seed 001): the bank account behind a financial social-security card, other agencies'
subsidy batches and their credits (one payment instruction each to the card's bank)

Revision ID: 0027
Revises: 0024
Create Date: 2026-12-07 03:00:00

Data: none moves; the tables start empty (a card's account is recorded by an operator). Down: the tables go.
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'card_accounts',
        sa.Column('card_id', sa.String(length=24), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('bank_id', sa.String(length=40), nullable=False),
        sa.Column('account_no_enc', sa.LargeBinary(), nullable=False),
        sa.Column('account_last4', sa.String(length=4), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['bank_id'], ['payment_institutions.id'], name=op.f('fk_card_accounts_bank_id_payment_institutions')),
        sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_card_accounts_card_id_cards')),
        sa.PrimaryKeyConstraint('card_id', name=op.f('pk_card_accounts')),
    )
    op.create_index(op.f('ix_card_accounts_region'), 'card_accounts', ['region'], unique=False)
    op.create_table(
        'benefit_batches',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('agency', sa.String(length=100), nullable=False),
        sa.Column('batch_no', sa.String(length=40), nullable=False),
        sa.Column('purpose', sa.String(length=200), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('recorded_by', sa.String(length=80), nullable=False),
        sa.Column('submitted_by', sa.String(length=80), nullable=True),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('total > 0', name=op.f('ck_benefit_batches_positive')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_benefit_batches')),
        sa.UniqueConstraint('region', 'agency', 'batch_no', name=op.f('uq_benefit_batches_region_agency_batch_no')),
    )
    op.create_index(op.f('ix_benefit_batches_region'), 'benefit_batches', ['region'], unique=False)
    op.create_table(
        'benefit_credits',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('batch_id', sa.String(length=24), nullable=False),
        sa.Column('row_no', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=24), nullable=False),
        sa.Column('card_id', sa.String(length=24), nullable=False),
        sa.Column('bank_id', sa.String(length=40), nullable=False),
        sa.Column('account_no_enc', sa.LargeBinary(), nullable=False),
        sa.Column('account_last4', sa.String(length=4), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('bank_ref', sa.String(length=64), nullable=True),
        sa.Column('return_code', sa.String(length=64), nullable=True),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_benefit_credits_positive')),
        sa.ForeignKeyConstraint(['bank_id'], ['payment_institutions.id'], name=op.f('fk_benefit_credits_bank_id_payment_institutions')),
        sa.ForeignKeyConstraint(['batch_id'], ['benefit_batches.id'], name=op.f('fk_benefit_credits_batch_id_benefit_batches')),
        sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_benefit_credits_card_id_cards')),
        sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_benefit_credits_person_id_persons')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_benefit_credits')),
        sa.UniqueConstraint('batch_id', 'row_no', name=op.f('uq_benefit_credits_batch_id_row_no')),
    )
    op.create_index(op.f('ix_benefit_credits_region'), 'benefit_credits', ['region'], unique=False)
    op.create_index(op.f('ix_benefit_credits_person_id'), 'benefit_credits', ['person_id'], unique=False)
    op.create_index('ix_benefit_credits_open', 'benefit_credits', ['status', 'batch_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_benefit_credits_open', table_name='benefit_credits')
    op.drop_index(op.f('ix_benefit_credits_person_id'), table_name='benefit_credits')
    op.drop_index(op.f('ix_benefit_credits_region'), table_name='benefit_credits')
    op.drop_table('benefit_credits')
    op.drop_index(op.f('ix_benefit_batches_region'), table_name='benefit_batches')
    op.drop_table('benefit_batches')
    op.drop_index(op.f('ix_card_accounts_region'), table_name='card_accounts')
    op.drop_table('card_accounts')
