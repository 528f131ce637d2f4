"""presence: credentials an account's owner presented (presences); look-ups of people by number (person_lookups)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('presences',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('credential_id', sa.String(length=60), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('visit_id', sa.String(length=30), nullable=True),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.String(length=24), nullable=False),
    sa.Column('terminal_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('setl_id', sa.String(length=30), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_presences_institution_id_institutions')),
    sa.ForeignKeyConstraint(['owner_id'], ['persons.id'], name=op.f('fk_presences_owner_id_persons')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_presences_person_id_persons')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_presences_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_presences')),
    sa.UniqueConstraint('kind', 'credential_id', name=op.f('uq_presences_kind_credential_id'))
    )
    with op.batch_alter_table('presences', schema=None) as batch_op:
        batch_op.create_index('ix_presences_live', ['institution_id', 'status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_presences_region'), ['region'], unique=False)

    op.create_table('person_lookups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('credential_type', sa.String(length=10), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('number_hash', sa.String(length=64), nullable=False),
    sa.Column('block_hash', sa.String(length=64), nullable=False),
    sa.Column('alert', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_person_lookups_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person_lookups'))
    )
    with op.batch_alter_table('person_lookups', schema=None) as batch_op:
        batch_op.create_index('ix_person_lookups_recent', ['institution_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_lookups_region'), ['region'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('person_lookups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_lookups_region'))
        batch_op.drop_index('ix_person_lookups_recent')
    op.drop_table('person_lookups')
    with op.batch_alter_table('presences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_presences_region'))
        batch_op.drop_index('ix_presences_live')
    op.drop_table('presences')
