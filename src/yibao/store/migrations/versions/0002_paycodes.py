"""dynamic payment codes: card slots and counters, codes, refused scans

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:32:36.934798
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paycode_refusals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('terminal_id', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('counted', sa.Boolean(), nullable=False),
    sa.Column('card_id', sa.String(length=24), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_paycode_refusals_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paycode_refusals'))
    )
    with op.batch_alter_table('paycode_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_paycode_refusals_guesses', ['institution_id', 'terminal_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_paycode_refusals_region'), ['region'], unique=False)

    op.create_table('paycode_slots',
    sa.Column('card_id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('slot', sa.String(length=8), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_paycode_slots_card_id_cards')),
    sa.PrimaryKeyConstraint('card_id', name=op.f('pk_paycode_slots')),
    sa.UniqueConstraint('slot', name=op.f('uq_paycode_slots_slot'))
    )
    with op.batch_alter_table('paycode_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_paycode_slots_region'), ['region'], unique=False)

    op.create_table('paycodes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('card_id', sa.String(length=24), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('holder_id', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('institution_id', sa.String(length=20), nullable=True),
    sa.Column('terminal_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_paycodes_card_id_cards')),
    sa.ForeignKeyConstraint(['holder_id'], ['persons.id'], name=op.f('fk_paycodes_holder_id_persons')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_paycodes_institution_id_institutions')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_paycodes_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paycodes')),
    sa.UniqueConstraint('card_id', 'counter', name=op.f('uq_paycodes_card_id_counter'))
    )
    with op.batch_alter_table('paycodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_paycodes_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_paycodes_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_paycodes_region'), ['region'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('paycodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paycodes_region'))
        batch_op.drop_index(batch_op.f('ix_paycodes_person_id'))
        batch_op.drop_index(batch_op.f('ix_paycodes_holder_id'))

    op.drop_table('paycodes')
    with op.batch_alter_table('paycode_slots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paycode_slots_region'))

    op.drop_table('paycode_slots')
    with op.batch_alter_table('paycode_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paycode_refusals_region'))
        batch_op.drop_index('ix_paycode_refusals_guesses')

    op.drop_table('paycode_refusals')
