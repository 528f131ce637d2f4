"""the dashboard's periods and the audit log's pages: settlements by when they were made, the log by its time

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 11:00:00

Data: none moves. Down: the indexes go.
"""
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_settlements_made', 'settlements', ['created_at'])
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_index('ix_settlements_made', table_name='settlements')
