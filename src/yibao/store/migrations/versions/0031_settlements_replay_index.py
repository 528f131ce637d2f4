"""a pooling region's settlements of a year by person and time: the policy what-if streams them in that order

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 08:30:00

Data: none moves. Down: the index goes.
"""
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_settlements_replay', 'settlements', ['insured_region', 'year', 'person_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_settlements_replay', table_name='settlements')
