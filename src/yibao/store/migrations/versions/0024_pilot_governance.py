"""pilot governance (seed 002): institutions' and regions' applications to take mobile-mode payments, with their
implementation plan and risk-assessment report, and the agreements their approval signs (backstop liability,
recourse, a one-year term; active, suspended or superseded by a renewal)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 02:00:00

Data: from this version a hospital takes one-code, face, mobile and credit payments only under an agreement in force.
So that an upgrade does not stop payments at institutions that take them today, every active institution gets an
agreement recorded by the upgrade (no application; all four modes; a year from the upgrade's day; signed by
"migration:0024"), which the agency replaces with the real one (docs/governance.md). Down: the tables go.
"""
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pilot_applications',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('applicant', sa.String(length=12), nullable=False),
        sa.Column('institution_id', sa.String(length=20), nullable=True),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('modes', sa.String(length=40), nullable=False),
        sa.Column('assessed_by', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('submitted_by', sa.String(length=60), nullable=False),
        sa.Column('reviewed_by', sa.String(length=60), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('review_note', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institutions.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pilot_applications_institution_id', 'pilot_applications', ['institution_id'])
    op.create_index('ix_pilot_applications_region', 'pilot_applications', ['region'])
    op.create_table(
        'pilot_documents',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('application_id', sa.String(length=24), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['pilot_applications.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pilot_documents_application_id', 'pilot_documents', ['application_id'])
    agreements = op.create_table(
        'pilot_agreements',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('applicant', sa.String(length=12), nullable=False),
        sa.Column('institution_id', sa.String(length=20), nullable=True),
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('application_id', sa.String(length=24), nullable=True),
        sa.Column('renews', sa.String(length=24), nullable=True),
        sa.Column('modes', sa.String(length=40), nullable=False),
        sa.Column('backstop_liability', sa.Boolean(), nullable=False),
        sa.Column('recourse', sa.String(length=300), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('status_reason', sa.String(length=300), nullable=True),
        sa.Column('signed_by', sa.String(length=60), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institutions.id']),
        sa.ForeignKeyConstraint(['application_id'], ['pilot_applications.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pilot_agreements_institution_id', 'pilot_agreements', ['institution_id'])
    op.create_index('ix_pilot_agreements_region', 'pilot_agreements', ['region'])
    now = datetime.now(timezone.utc)
    today = (now + timedelta(hours=8)).date()  # Beijing
    end = date(today.year + 1, today.month, today.day if (today.month, today.day) != (2, 29) else 28) - timedelta(days=1)
    rows = op.get_bind().execute(sa.text("SELECT id, region FROM institutions WHERE status = 'active' ORDER BY id")).all()
    op.bulk_insert(agreements, [
        {"id": f"PA{n:010d}M", "applicant": "institution", "institution_id": r.id, "region": r.region, "application_id": None, "renews": None,
         "modes": "onecode,face,mobile,credit", "backstop_liability": True,
         "recourse": "recorded by the upgrade to 0024: replace with the signed agreement", "starts_on": today, "expires_on": end,
         "status": "active", "status_reason": None, "signed_by": "migration:0024", "updated_at": now, "created_at": now}
        for n, r in enumerate(rows, start=1)])


def downgrade() -> None:
    op.drop_index('ix_pilot_agreements_region', table_name='pilot_agreements')
    op.drop_index('ix_pilot_agreements_institution_id', table_name='pilot_agreements')
    op.drop_table('pilot_agreements')
    op.drop_index('ix_pilot_documents_application_id', table_name='pilot_documents')
    op.drop_table('pilot_documents')
    op.drop_index('ix_pilot_applications_region', table_name='pilot_applications')
    op.drop_index('ix_pilot_applications_institution_id', table_name='pilot_applications')
    op.drop_table('pilot_applications')
