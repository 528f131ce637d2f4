"""platform marks: facts about the database itself (the demo world was loaded into it; which channel
configurations the demo wrote)

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('platform_marks',
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_platform_marks'))
    )


def downgrade() -> None:
    op.drop_table('platform_marks')
