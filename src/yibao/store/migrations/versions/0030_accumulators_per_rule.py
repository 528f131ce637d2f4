"""one accumulator per eligible-cost ceiling and per annual cap (issue 16, item 1): pool_eligible_used, which every
visit added to, becomes inpatient_eligible_used and outpatient_eligible_used, and the inpatient rules' pooled payments get
their own inpatient_pool_paid (a scheme cap may count inpatient payments only); the accumulators of yearly bands and
stacked layers (item 4): the year's in-scope cost per visit class, the large-amount layer's yearly base, the layer above
the large-amount cap's base and payments; and settlements.other, the oth_pay a policy's layer may report

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 08:30:00

Data, per accumulator row (a person's year):
- inpatient_pool_paid = pool_fund_paid − outpatient_pool_paid: exact, because every pooled payment went to
  pool_fund_paid and those of outpatient-class visits (every kind but inpatient) also to outpatient_pool_paid.
- inpatient_eligible_used = the pool_eligible_used of the year's inpatient settlements whose deltas still stand (read
  from each settlement's stored accumulator_delta and its visit's kind; standing: settled or pending, or partial with
  the insurance part not refunded — void, cancel, reversal and an insurance refund gave the delta back), at most the
  stored value; outpatient_eligible_used = the stored value − that. The stored total is kept exactly (the row is the
  authority on what the year used; the settlements only say how it splits), so an inconsistency can only move cost
  between the two classes, never create or lose any.
- every settlement's stored accumulator_delta is rewritten in the new shape (pool_eligible_used moved to its visit
  class's key, inpatient_pool_paid added for inpatient visits), so a later cancel or refund gives back exactly what
  the new accumulators hold. The settlement's document (the setlinfo answered then) is history and stays as it was.
- inpatient_in_scope / outpatient_in_scope = the in-scope amount (the document's inscp_scp_amt) of the year's standing
  settlements by visit class, and each delta gets its visit class's in-scope key: yearly basic-fund bands measure on the
  year so far from the first settlement after the upgrade.
- large_amount_base, beyond_cap_base, beyond_cap_paid start at 0: no settlement recorded the cost beyond the basic layer
  (only what the large-amount layer paid on it), and no layer above the large-amount cap existed. Only a large-amount
  layer with a threshold or bands (none shipped before 0030 could have one) reads large_amount_base, so the year's
  settlements before the upgrade count towards such a threshold only from the upgrade on — a policy adding one mid-year
  should take effect from the next year, or its operators accept that.
- settlements.other = 0 (no layer reported oth_pay before).
Down: pool_eligible_used = the sum of the two, the new columns dropped, the deltas rewritten back; refused while a
settlement has an oth_pay amount (the schema before 0030 cannot hold it).

Rows are streamed in id order, a thousand at a time (bounded memory); the sums are kept per person-year.
"""
import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

_BATCH = 1000
_OLD_CHECK = ('outpatient_deductible_used >= 0 AND pool_fund_paid >= 0 AND outpatient_pool_paid >= 0 AND pool_eligible_used >= 0 '
              'AND serious_illness_base >= 0 AND serious_illness_paid >= 0 AND large_amount_paid >= 0 AND assistance_base >= 0 '
              'AND assistance_paid >= 0')
_NEW_CHECK = ('outpatient_deductible_used >= 0 AND pool_fund_paid >= 0 AND outpatient_pool_paid >= 0 AND inpatient_pool_paid >= 0 AND '
              'inpatient_eligible_used >= 0 AND outpatient_eligible_used >= 0 AND inpatient_in_scope >= 0 AND outpatient_in_scope >= 0 AND '
              'serious_illness_base >= 0 AND serious_illness_paid >= 0 AND large_amount_base >= 0 AND large_amount_paid >= 0 AND '
              'beyond_cap_base >= 0 AND beyond_cap_paid >= 0 AND assistance_base >= 0 AND assistance_paid >= 0')

# A settlement's delta stands unless it was given back: voided, cancelled, or partial after its insurance part's refund
# (refund legs are the settlement's legs' client ids + ':refund'; the cash leg's is '<id>:cash').
_NEW_COLUMNS = ('inpatient_pool_paid', 'inpatient_eligible_used', 'outpatient_eligible_used', 'inpatient_in_scope', 'outpatient_in_scope',
                'large_amount_base', 'beyond_cap_base', 'beyond_cap_paid')
_SETTLEMENTS = sa.text("""
    SELECT s.id, s.person_id, s.year, s.accumulator_delta, s.document, v.kind,
           CASE WHEN s.status IN ('settled', 'pending') THEN 1
                WHEN s.status = 'partial' AND NOT EXISTS (
                    SELECT 1 FROM transfers t WHERE t.ref = s.id AND t.code = 'refund' AND t.client_id <> s.id || ':cash:refund')
                THEN 1 ELSE 0 END AS standing
    FROM settlements s JOIN visits v ON v.id = s.visit_id
    WHERE s.id > :after ORDER BY s.id LIMIT :n""")


def _rewrite_deltas(conn: sa.engine.Connection, change) -> None:  # noqa: ANN001
    """Stream every settlement, let ``change(row, delta)`` edit its delta, store the edited ones."""
    after = ''
    while True:
        rows = conn.execute(_SETTLEMENTS, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        updates = []
        for row in rows:
            delta = json.loads(row.accumulator_delta)
            if change(row, delta):
                updates.append({"id": row.id, "delta": json.dumps(delta, separators=(",", ":"))})
        if updates:
            conn.execute(sa.text("UPDATE settlements SET accumulator_delta = :delta WHERE id = :id"), updates)
        after = rows[-1].id


def _fen(yuan: str) -> int:
    """A document's yuan string ("1234.50") in fen, exactly."""
    return int((Decimal(yuan) * 100).to_integral_value())


def upgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('other', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('accumulators', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(op.f('ck_accumulators_non_negative'), type_='check')
        for name in _NEW_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default='0'))
    conn = op.get_bind()
    sums: dict[tuple[str, int], list[int]] = {}  # person-year -> [inpatient eligible used, inpatient in scope, outpatient in scope]

    def split(row, delta: dict) -> bool:  # noqa: ANN001
        if 'pool_eligible_used' not in delta:
            return False
        used = int(delta.pop('pool_eligible_used'))
        inp = row.kind == 'inpatient'
        in_scope = _fen(json.loads(row.document)['inscp_scp_amt'])
        delta['inpatient_eligible_used' if inp else 'outpatient_eligible_used'] = used
        delta['outpatient_eligible_used' if inp else 'inpatient_eligible_used'] = 0
        delta['inpatient_pool_paid'] = int(delta.get('pool_fund_paid', 0)) if inp else 0
        delta['inpatient_in_scope' if inp else 'outpatient_in_scope'] = in_scope
        delta['outpatient_in_scope' if inp else 'inpatient_in_scope'] = 0
        for name in ('large_amount_base', 'beyond_cap_base', 'beyond_cap_paid'):
            delta.setdefault(name, 0)
        if row.standing:
            s = sums.setdefault((row.person_id, int(row.year)), [0, 0, 0])
            s[0] += used if inp else 0
            s[1 if inp else 2] += in_scope
        return True

    _rewrite_deltas(conn, split)
    conn.execute(sa.text("UPDATE accumulators SET inpatient_pool_paid = pool_fund_paid - outpatient_pool_paid, "
                         "outpatient_eligible_used = pool_eligible_used"))
    params = [{"p": p, "y": y, "v": v, "i": i, "o": o} for (p, y), (v, i, o) in sums.items()]
    for i in range(0, len(params), _BATCH):
        conn.execute(sa.text("""UPDATE accumulators SET
                                  inpatient_eligible_used = CASE WHEN :v < pool_eligible_used THEN :v ELSE pool_eligible_used END,
                                  outpatient_eligible_used = pool_eligible_used - CASE WHEN :v < pool_eligible_used THEN :v ELSE pool_eligible_used END,
                                  inpatient_in_scope = :i, outpatient_in_scope = :o
                                WHERE person_id = :p AND year = :y"""), params[i:i + _BATCH])
    # A negative difference cannot come from the engine (outpatient payments are part of pool_fund_paid); if a hand-edited
    # row had one, zero is the honest inpatient figure.
    conn.execute(sa.text("UPDATE accumulators SET inpatient_pool_paid = 0 WHERE inpatient_pool_paid < 0"))
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.alter_column('other', server_default=None)
    with op.batch_alter_table('accumulators', schema=None, recreate='always') as batch_op:
        for name in _NEW_COLUMNS:
            batch_op.alter_column(name, server_default=None)
        batch_op.drop_column('pool_eligible_used')
        batch_op.create_check_constraint(op.f('ck_accumulators_non_negative'), sa.text(_NEW_CHECK))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT COUNT(*) FROM settlements WHERE other <> 0")).scalar_one():
        raise RuntimeError("settlements with an oth_pay amount exist: the schema before 0030 cannot hold them")
    with op.batch_alter_table('accumulators', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(op.f('ck_accumulators_non_negative'), type_='check')
        batch_op.add_column(sa.Column('pool_eligible_used', sa.BigInteger(), nullable=False, server_default='0'))
    conn.execute(sa.text("UPDATE accumulators SET pool_eligible_used = inpatient_eligible_used + outpatient_eligible_used"))

    def merge(row, delta: dict) -> bool:  # noqa: ANN001
        if 'inpatient_eligible_used' not in delta and 'outpatient_eligible_used' not in delta:
            return False
        delta['pool_eligible_used'] = int(delta.pop('inpatient_eligible_used', 0)) + int(delta.pop('outpatient_eligible_used', 0))
        for name in _NEW_COLUMNS:
            delta.pop(name, None)
        return True

    _rewrite_deltas(conn, merge)
    with op.batch_alter_table('accumulators', schema=None, recreate='always') as batch_op:
        batch_op.alter_column('pool_eligible_used', server_default=None)
        for name in reversed(_NEW_COLUMNS):
            batch_op.drop_column(name)
        batch_op.create_check_constraint(op.f('ck_accumulators_non_negative'), sa.text(_OLD_CHECK))
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_column('other')
