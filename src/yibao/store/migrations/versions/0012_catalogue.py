"""catalogue: the agency's medical-insurance catalogue per region and version (catalogue_versions, catalogue_entries),
the institutions' mappings of their own item codes to national codes (item_mappings), and on each fee line what the
platform decided from the catalogue (fee_lines.med_list_codg … fee_ocur_time; null on lines uploaded before)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_FEE_LINE_COLUMNS = (
    ('med_list_codg', sa.String(length=30)), ('medins_list_codg', sa.String(length=50)), ('chrgitm_lv', sa.String(length=3)),
    ('catalogue_version', sa.String(length=40)), ('lmt_used_flag', sa.String(length=1)), ('hosp_appr_flag', sa.Boolean()),
    ('memo', sa.String(length=300)), ('fee_ocur_time', sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table('catalogue_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('ver', sa.String(length=40), nullable=False),
    sa.Column('begndate', sa.Date(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('imported_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_versions')),
    sa.UniqueConstraint('region', 'ver', name=op.f('uq_catalogue_versions_region_ver'))
    )
    with op.batch_alter_table('catalogue_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_versions_region'), ['region'], unique=False)

    op.create_table('catalogue_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('hilist_code', sa.String(length=30), nullable=False),
    sa.Column('hilist_name', sa.String(length=200), nullable=False),
    sa.Column('list_type', sa.String(length=3), nullable=False),
    sa.Column('chrgitm_lv', sa.String(length=3), nullable=False),
    sa.Column('pric_uplmt_amt', sa.BigInteger(), nullable=True),
    sa.Column('selfpay_prop', sa.Integer(), nullable=True),
    sa.Column('fund_prop', sa.Integer(), nullable=True),
    sa.Column('lmt_med_type', sa.String(length=80), nullable=True),
    sa.Column('lmt_medins_lv', sa.String(length=10), nullable=True),
    sa.Column('lmt_cnt', sa.BigInteger(), nullable=True),
    sa.Column('lmt_cnt_day', sa.BigInteger(), nullable=True),
    sa.Column('lmt_age_min', sa.Integer(), nullable=True),
    sa.Column('lmt_age_max', sa.Integer(), nullable=True),
    sa.Column('hosp_appr_flag', sa.Boolean(), nullable=False),
    sa.Column('rx_flag', sa.Boolean(), nullable=False),
    sa.Column('begndate', sa.Date(), nullable=False),
    sa.Column('enddate', sa.Date(), nullable=True),
    sa.Column('updt_time', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['catalogue_versions.id'], name=op.f('fk_catalogue_entries_version_id_catalogue_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_entries')),
    sa.UniqueConstraint('version_id', 'hilist_code', name=op.f('uq_catalogue_entries_version_id_hilist_code'))
    )
    with op.batch_alter_table('catalogue_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_entries_region'), ['region'], unique=False)
        batch_op.create_index('ix_catalogue_entries_region_hilist_code', ['region', 'hilist_code'], unique=False)

    op.create_table('item_mappings',
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('medins_list_codg', sa.String(length=50), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('medins_list_name', sa.String(length=200), nullable=False),
    sa.Column('hilist_code', sa.String(length=30), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_item_mappings_institution_id_institutions')),
    sa.PrimaryKeyConstraint('institution_id', 'medins_list_codg', name=op.f('pk_item_mappings'))
    )
    with op.batch_alter_table('item_mappings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_mappings_region'), ['region'], unique=False)

    with op.batch_alter_table('fee_lines', schema=None) as batch_op:
        for name, type_ in _FEE_LINE_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fee_lines', schema=None) as batch_op:
        for name, _ in reversed(_FEE_LINE_COLUMNS):
            batch_op.drop_column(name)
    op.drop_table('item_mappings')
    op.drop_table('catalogue_entries')
    op.drop_table('catalogue_versions')
