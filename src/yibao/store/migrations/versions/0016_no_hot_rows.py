"""no hot rows: accounts that may be overdrawn derive their balances from their transfers; the audit trail
has several lanes per region

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:30:00

Data, for a database that already has books:
- the balance columns of every account that does not keep a running balance (all but personal accounts,
  credit lines and contributions: `domain.ledger.keeps_balance`) are set to zero — from now on its sides
  are the sums of its transfers, which they equalled (`yibao audit verify` checked it).
- each region's chain becomes lane 0 of its trail, unchanged (its entries verify as before); lanes 1–15
  are opened empty, with the region's legacy boundary.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

LANES = 16


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('lane', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_audit_log', type_='primary')
        batch_op.create_primary_key('pk_audit_log', ['region', 'lane', 'seq'])
    with op.batch_alter_table('audit_heads', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('lane', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_audit_heads', type_='primary')
        batch_op.create_primary_key('pk_audit_heads', ['region', 'lane'])
    conn = op.get_bind()
    for region, upto in conn.execute(sa.text("SELECT region, legacy_transfers_upto FROM audit_heads WHERE lane = 0")).all():
        for lane in range(1, LANES):
            conn.execute(sa.text("INSERT INTO audit_heads (region, lane, seq, hash, keyed_from, legacy_transfers_upto) "
                                 "VALUES (:region, :lane, 0, :genesis, 1, :upto)"),
                         {"region": region, "lane": lane, "genesis": "0" * 64, "upto": int(upto)})
    conn.execute(sa.text("UPDATE ledger_accounts SET debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0 "
                         "WHERE NOT debits_must_not_exceed_credits"))


def downgrade() -> None:
    raise NotImplementedError("0016 is not undone: derived balances would have to be written back and lanes merged")
