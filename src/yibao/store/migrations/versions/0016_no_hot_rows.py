"""no hot rows: accounts that may be overdrawn derive their balances from their transfers; the audit trail
has several lanes per region; a settlement finds the patient's presence by person, not among all the hospital's;
the rows a payment updates leave room for their next version on their page (PostgreSQL)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:30:00

Data, for a database that already has books:
- the balance columns of every account that does not keep a running balance (all but personal accounts,
  credit lines and contributions: `domain.ledger.keeps_balance`) are set to zero — from now on its sides
  are the sums of its transfers, which they equalled (`yibao audit verify` checked it).
- each region's chain becomes lane 0 of its trail, unchanged (its entries verify as before); lanes 1–31
  are opened empty, with the region's legacy boundary.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

LANES = 32
UPDATED_IN_PLACE = ('visits', 'presences', 'accumulators', 'ledger_accounts', 'idempotency_records', 'payment_orders',
                    'audit_heads', 'messages')


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('lane', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_audit_log', type_='primary')
        batch_op.create_primary_key('pk_audit_log', ['region', 'lane', 'seq'])
    with op.batch_alter_table('audit_heads', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('lane', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_audit_heads', type_='primary')
        batch_op.create_primary_key('pk_audit_heads', ['region', 'lane'])
    op.drop_index('ix_presences_live', table_name='presences')
    # Never queried (visits are found by id): it made every status change of a visit a non-HOT update that inserted
    # into one leaf page per hospital — settlements queued on that page's lock (LWLock:BufferContent, issue 13).
    op.drop_index('ix_visits_institution_status', table_name='visits')
    if op.get_bind().dialect.name == 'postgresql':
        # Rows a payment updates in place (a status, a balance, a counter): 20 % of each new page kept free, so the
        # next version fits beside the old one (a HOT update: no index entry written, no page extended).
        for table in UPDATED_IN_PLACE:
            op.execute(f'ALTER TABLE {table} SET (fillfactor = 80)')
    op.create_index('ix_presences_owner_live', 'presences', ['owner_id', 'status'], unique=False)
    op.create_index('ix_presences_person_live', 'presences', ['person_id', 'status'], unique=False)
    conn = op.get_bind()
    for region, upto in conn.execute(sa.text("SELECT region, legacy_transfers_upto FROM audit_heads WHERE lane = 0")).all():
        for lane in range(1, LANES):
            conn.execute(sa.text("INSERT INTO audit_heads (region, lane, seq, hash, keyed_from, legacy_transfers_upto) "
                                 "VALUES (:region, :lane, 0, :genesis, 1, :upto)"),
                         {"region": region, "lane": lane, "genesis": "0" * 64, "upto": int(upto)})
    conn.execute(sa.text("UPDATE ledger_accounts SET debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0 "
                         "WHERE NOT debits_must_not_exceed_credits"))


def downgrade() -> None:
    conn = op.get_bind()
    used = conn.execute(sa.text("SELECT COUNT(*) FROM audit_log WHERE lane <> 0")).scalar_one()
    if used:
        # Entries of other lanes cannot join lane 0's chain without recomputing MACs the key vouches for: refused,
        # with nothing changed, rather than a trail that no longer verifies.
        raise RuntimeError(f"0016 cannot be undone: {used} audit entries are in lanes other than 0 (one chain per region "
                           "cannot hold them without rewriting the trail)")
    # Running balances again for every account: the sums of its transfers, as 0016 derived them.
    for side, column, where in (("debits_pending", "debit_account_id", "kind = 'pending' AND state = 'pending'"),
                                ("debits_posted", "debit_account_id", "kind IN ('single', 'post')"),
                                ("credits_pending", "credit_account_id", "kind = 'pending' AND state = 'pending'"),
                                ("credits_posted", "credit_account_id", "kind IN ('single', 'post')")):
        conn.execute(sa.text(f"UPDATE ledger_accounts SET {side} = (SELECT COALESCE(SUM(amount), 0) FROM transfers "
                             f"WHERE {column} = ledger_accounts.id AND {where}) WHERE NOT debits_must_not_exceed_credits"))
    conn.execute(sa.text("DELETE FROM audit_heads WHERE lane <> 0"))
    with op.batch_alter_table('audit_heads', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('pk_audit_heads', type_='primary')
        batch_op.create_primary_key('pk_audit_heads', ['region'])
        batch_op.drop_column('lane')
    with op.batch_alter_table('audit_log', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('pk_audit_log', type_='primary')
        batch_op.create_primary_key('pk_audit_log', ['region', 'seq'])
        batch_op.drop_column('lane')
    op.drop_index('ix_presences_person_live', table_name='presences')
    op.drop_index('ix_presences_owner_live', table_name='presences')
    op.create_index('ix_presences_live', 'presences', ['institution_id', 'status', 'expires_at'], unique=False)
    op.create_index('ix_visits_institution_status', 'visits', ['institution_id', 'status'], unique=False)
    if conn.dialect.name == 'postgresql':
        for table in UPDATED_IN_PLACE:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
