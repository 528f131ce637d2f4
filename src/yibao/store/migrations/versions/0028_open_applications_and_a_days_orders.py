"""one open pilot application per applicant, enforced by unique partial indexes (the service checked it, a race could
pass the check); a day's reconciliation reads an institution's orders and refunds completed that day by index instead
of scanning the tables

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 05:00:00

Data: none moves. An upgrade fails if a race has already left two submitted applications of one applicant: review (or
reject) one of them, then upgrade. Down: the indexes go.
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

_OPEN_INSTITUTION = sa.text("status = 'submitted' AND applicant = 'institution'")
_OPEN_REGION = sa.text("status = 'submitted' AND applicant = 'region'")


def upgrade() -> None:
    op.create_index('ux_pilot_applications_open_institution', 'pilot_applications', ['institution_id'], unique=True,
                    sqlite_where=_OPEN_INSTITUTION, postgresql_where=_OPEN_INSTITUTION)
    op.create_index('ux_pilot_applications_open_region', 'pilot_applications', ['region'], unique=True,
                    sqlite_where=_OPEN_REGION, postgresql_where=_OPEN_REGION)
    op.create_index('ix_payment_orders_pi_completed', 'payment_orders', ['payment_institution_id', 'completed_at'])
    op.create_index('ix_payment_refunds_status_completed', 'payment_refunds', ['status', 'completed_at'])


def downgrade() -> None:
    op.drop_index('ix_payment_refunds_status_completed', table_name='payment_refunds')
    op.drop_index('ix_payment_orders_pi_completed', table_name='payment_orders')
    op.drop_index('ux_pilot_applications_open_region', table_name='pilot_applications')
    op.drop_index('ux_pilot_applications_open_institution', table_name='pilot_applications')
