"""fsi: the national interface gateway — each institution's gateway credential (paasid token, optional SM4 key and
SM2 public key), the nonces seen within the timestamp window, and the sign-ins (9001 sign_no)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'  # after the catalogue
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fsi_credentials',
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('token_enc', sa.LargeBinary(), nullable=False),
    sa.Column('sm4_key_enc', sa.LargeBinary(), nullable=True),
    sa.Column('sm2_public', sa.String(length=160), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('issued_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_fsi_credentials_institution_id_institutions')),
    sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_fsi_credentials'))
    )
    op.create_index(op.f('ix_fsi_credentials_region'), 'fsi_credentials', ['region'], unique=False)
    op.create_table('fsi_nonces',
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('institution_id', 'nonce', name=op.f('pk_fsi_nonces'))
    )
    op.create_index(op.f('ix_fsi_nonces_expires_at'), 'fsi_nonces', ['expires_at'], unique=False)
    op.create_table('fsi_signins',
    sa.Column('sign_no', sa.String(length=30), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('opter_no', sa.String(length=30), nullable=False),
    sa.Column('mac', sa.String(length=40), nullable=True),
    sa.Column('ip', sa.String(length=60), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('signed_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_fsi_signins_institution_id_institutions')),
    sa.PrimaryKeyConstraint('sign_no', name=op.f('pk_fsi_signins'))
    )
    op.create_index(op.f('ix_fsi_signins_institution_id'), 'fsi_signins', ['institution_id'], unique=False)
    op.create_index(op.f('ix_fsi_signins_region'), 'fsi_signins', ['region'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_fsi_signins_region'), table_name='fsi_signins')
    op.drop_index(op.f('ix_fsi_signins_institution_id'), table_name='fsi_signins')
    op.drop_table('fsi_signins')
    op.drop_index(op.f('ix_fsi_nonces_expires_at'), table_name='fsi_nonces')
    op.drop_table('fsi_nonces')
    op.drop_index(op.f('ix_fsi_credentials_region'), table_name='fsi_credentials')
    op.drop_table('fsi_credentials')
