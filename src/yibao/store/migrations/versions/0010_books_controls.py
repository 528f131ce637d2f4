"""books controls: personal-account credits with maker-checker (account_credits); contributions never
overdrawn; the keyed audit chain starts here (audit_heads.keyed_from) and its entries vouch for transfers
(audit_log.transfers, audit_heads.legacy_transfers_upto)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-06 12:00:00

Data, for a database that already has books:
- each region's contributions account becomes no-overdraft. Where earlier credits (made before collections
  were recorded) took it below zero, a collection of the deficit is recorded first, from the region's
  contributions source (`migration:0010:collection:{region}`): the money credited before this control is
  recognised as collected then; reconcile it with the agency's bank records.
- each existing chain stays as it is (plain SHA-256) up to its head; entries after it are keyed
  (keyed_from = seq + 1). Transfers written before (id up to legacy_transfers_upto) carry no audit vouching.
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_credits',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('client_id', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('approved_by', sa.String(length=80), nullable=True),
    sa.Column('credited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_account_credits_positive')),
    sa.CheckConstraint('approved_by IS NULL OR approved_by <> requested_by', name=op.f('ck_account_credits_second_operator')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_account_credits_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_credits')),
    sa.UniqueConstraint('client_id', name=op.f('uq_account_credits_client_id'))
    )
    with op.batch_alter_table('account_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_credits_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_credits_region'), ['region'], unique=False)

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfers', sa.Text(), nullable=True))
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.BigInteger(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('legacy_transfers_upto', sa.BigInteger(), server_default='0', nullable=False))

    _contributions_never_overdrawn()
    conn = op.get_bind()
    upto = conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM transfers")).scalar_one()
    conn.execute(sa.text("UPDATE audit_heads SET keyed_from = seq + 1, legacy_transfers_upto = :upto"), {"upto": int(upto)})


def _contributions_never_overdrawn() -> None:
    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    accounts = sa.table('ledger_accounts', sa.column('id'), sa.column('region'), sa.column('kind'), sa.column('owner_id'),
                        sa.column('debits_pending'), sa.column('debits_posted'), sa.column('credits_pending'), sa.column('credits_posted'),
                        sa.column('debits_must_not_exceed_credits', sa.Boolean), sa.column('created_at', sa.DateTime(timezone=True)))
    transfers = sa.table('transfers', sa.column('client_id'), sa.column('region'), sa.column('debit_account_id'), sa.column('credit_account_id'),
                         sa.column('amount'), sa.column('kind'), sa.column('state'), sa.column('code'), sa.column('ref'),
                         sa.column('created_at', sa.DateTime(timezone=True)))
    rows = conn.execute(sa.select(accounts).where(accounts.c.kind == 'contributions')).all()
    for row in rows:
        source = f"external:{row.region}:contributions"
        if conn.execute(sa.select(accounts.c.id).where(accounts.c.id == source)).first() is None:
            conn.execute(accounts.insert().values(id=source, region=row.region, kind='external_contributions', owner_id=None, debits_pending=0,
                                                  debits_posted=0, credits_pending=0, credits_posted=0,
                                                  debits_must_not_exceed_credits=False, created_at=now))
        deficit = int(row.debits_posted) + int(row.debits_pending) - int(row.credits_posted)
        if deficit > 0:
            conn.execute(transfers.insert().values(client_id=f"migration:0010:collection:{row.region}", region=row.region,
                                                   debit_account_id=source, credit_account_id=row.id, amount=deficit, kind='single',
                                                   state='posted', code='contribution_collection', ref='migration 0010', created_at=now))
            conn.execute(accounts.update().where(accounts.c.id == source).values(debits_posted=accounts.c.debits_posted + deficit))
            conn.execute(accounts.update().where(accounts.c.id == row.id).values(credits_posted=accounts.c.credits_posted + deficit))
        conn.execute(accounts.update().where(accounts.c.id == row.id).values(debits_must_not_exceed_credits=True))


def downgrade() -> None:
    # The recorded collections and the no-overdraft flag stay: they are books, not schema.
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.drop_column('legacy_transfers_upto')
        batch_op.drop_column('keyed_from')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('transfers')
    with op.batch_alter_table('account_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_credits_region'))
        batch_op.drop_index(batch_op.f('ix_account_credits_person_id'))
    op.drop_table('account_credits')
