"""exchange_files: files exchanged with institutions over the national interface — the 1301-series catalogue
downloads the platform builds and the 9101 uploads, both fetched with 9102 until they expire

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'  # after the gateway
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exchange_files',
    sa.Column('file_qury_no', sa.String(length=40), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('infno', sa.String(length=4), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data_cnt', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_exchange_files_institution_id_institutions')),
    sa.PrimaryKeyConstraint('file_qury_no', name=op.f('pk_exchange_files'))
    )
    op.create_index(op.f('ix_exchange_files_expires_at'), 'exchange_files', ['expires_at'], unique=False)
    op.create_index(op.f('ix_exchange_files_institution_id'), 'exchange_files', ['institution_id'], unique=False)
    op.create_index(op.f('ix_exchange_files_region'), 'exchange_files', ['region'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_exchange_files_region'), table_name='exchange_files')
    op.drop_index(op.f('ix_exchange_files_institution_id'), table_name='exchange_files')
    op.drop_index(op.f('ix_exchange_files_expires_at'), table_name='exchange_files')
    op.drop_table('exchange_files')
