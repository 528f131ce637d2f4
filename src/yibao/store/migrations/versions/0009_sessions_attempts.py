"""server-side sessions for the cashier and operator pages (console_sessions); one attempts table keyed by (kind,
subject) for the lock-outs without a table of their own; face-payment failures counted per person; the platform's
SMS outbox gone (the gateway keeps what it sent); credit reminders remember whether their text went out

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('area', sa.String(length=10), nullable=False),
    sa.Column('principal', sa.String(length=80), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_console_sessions'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_region'), ['region'], unique=False)

    op.create_table('attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_subject', ['kind', 'subject', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempts_region'), ['region'], unique=False)

    with op.batch_alter_table('face_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_face_attempts_person', ['person_id', 'created_at'], unique=False)

    # Codes stored before this revision are unkeyed SHA-256 of six digits (reversible): none survives it.
    op.execute("DELETE FROM sms_codes")
    # The platform no longer keeps what it texted: the gateway does (the sandbox's in its own memory).
    with op.batch_alter_table('sandbox_sms_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_sms_outbox_region'))
        batch_op.drop_index(batch_op.f('ix_sandbox_sms_outbox_phone_hash'))
    op.drop_table('sandbox_sms_outbox')

    # A reminder's row is its text's outbox entry: sms_status says whether the text went out, sms_id is now the
    # gateway's message id (it was the platform's own outbox row).
    with op.batch_alter_table('credit_reminders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_status', sa.String(length=10), nullable=True))
    op.execute("UPDATE credit_reminders SET sms_status = CASE WHEN sms_id IS NULL THEN 'no_phone' ELSE 'sent' END")
    with op.batch_alter_table('credit_reminders', schema=None) as batch_op:
        batch_op.alter_column('sms_status', existing_type=sa.String(length=10), nullable=False)
        batch_op.alter_column('sms_id', existing_type=sa.Integer(), type_=sa.String(length=64), existing_nullable=True,
                              postgresql_using='sms_id::varchar')


def downgrade() -> None:
    op.execute("UPDATE credit_reminders SET sms_id = NULL")  # gateway message ids are no outbox rows
    with op.batch_alter_table('credit_reminders', schema=None) as batch_op:
        batch_op.alter_column('sms_id', existing_type=sa.String(length=64), type_=sa.Integer(), existing_nullable=True,
                              postgresql_using='sms_id::integer')
        batch_op.drop_column('sms_status')

    op.create_table('sandbox_sms_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('phone_masked', sa.String(length=20), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_sms_outbox'))
    )
    with op.batch_alter_table('sandbox_sms_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_sms_outbox_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_sandbox_sms_outbox_region'), ['region'], unique=False)

    with op.batch_alter_table('face_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_face_attempts_person')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_region'))
        batch_op.drop_index('ix_attempts_subject')
    op.drop_table('attempts')

    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_region'))
    op.drop_table('console_sessions')
