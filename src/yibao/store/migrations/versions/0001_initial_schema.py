"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 08:20:56.324391
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_heads',
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('region', name=op.f('pk_audit_heads'))
    )
    op.create_table('audit_log',
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('region', 'seq', name=op.f('pk_audit_log'))
    )
    op.create_table('idempotency_records',
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_records'))
    )
    op.create_table('institutions',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_institutions'))
    )
    with op.batch_alter_table('institutions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_institutions_region'), ['region'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('id', sa.String(length=60), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=True),
    sa.Column('debits_pending', sa.BigInteger(), nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), nullable=False),
    sa.Column('credits_pending', sa.BigInteger(), nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), nullable=False),
    sa.Column('debits_must_not_exceed_credits', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted', name=op.f('ck_ledger_accounts_no_overdraft')),
    sa.CheckConstraint('debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0', name=op.f('ck_ledger_accounts_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts'))
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_accounts_region'), ['region'], unique=False)

    op.create_table('messages',
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('msgid', sa.String(length=40), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('infno', sa.String(length=6), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('institution_id', 'msgid', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_region'), ['region'], unique=False)

    op.create_table('payment_institutions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('admitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('admission_ref', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_institutions'))
    )
    with op.batch_alter_table('payment_institutions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_institutions_region'), ['region'], unique=False)

    op.create_table('persons',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('id_number_enc', sa.LargeBinary(), nullable=False),
    sa.Column('id_number_hash', sa.String(length=64), nullable=False),
    sa.Column('name_enc', sa.LargeBinary(), nullable=False),
    sa.Column('phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('insurance_type', sa.String(length=10), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=True),
    sa.Column('employment_status', sa.String(length=12), nullable=False),
    sa.Column('hardship', sa.String(length=20), nullable=True),
    sa.Column('enrolment_guardian_id', sa.String(length=24), nullable=True),
    sa.Column('real_name_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('real_person_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('face_template_enc', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enrolment_guardian_id'], ['persons.id'], name=op.f('fk_persons_enrolment_guardian_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons')),
    sa.UniqueConstraint('id_number_hash', name=op.f('uq_persons_id_number_hash'))
    )
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_persons_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_persons_region'), ['region'], unique=False)

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

    op.create_table('sms_codes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_codes'))
    )
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_codes_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_codes_region'), ['region'], unique=False)

    op.create_table('accumulators',
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('outpatient_deductible_used', sa.BigInteger(), nullable=False),
    sa.Column('pool_fund_paid', sa.BigInteger(), nullable=False),
    sa.Column('outpatient_pool_paid', sa.BigInteger(), nullable=False),
    sa.Column('pool_eligible_used', sa.BigInteger(), nullable=False),
    sa.Column('serious_illness_base', sa.BigInteger(), nullable=False),
    sa.Column('serious_illness_paid', sa.BigInteger(), nullable=False),
    sa.Column('large_amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('assistance_base', sa.BigInteger(), nullable=False),
    sa.Column('assistance_paid', sa.BigInteger(), nullable=False),
    sa.Column('admissions', sa.Integer(), nullable=False),
    sa.CheckConstraint('outpatient_deductible_used >= 0 AND pool_fund_paid >= 0 AND outpatient_pool_paid >= 0 AND pool_eligible_used >= 0 AND serious_illness_base >= 0 AND serious_illness_paid >= 0 AND large_amount_paid >= 0 AND assistance_base >= 0 AND assistance_paid >= 0', name=op.f('ck_accumulators_non_negative')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_accumulators_person_id_persons')),
    sa.PrimaryKeyConstraint('person_id', 'year', name=op.f('pk_accumulators'))
    )
    op.create_table('cards',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('card_no_enc', sa.LargeBinary(), nullable=False),
    sa.Column('card_no_hash', sa.String(length=64), nullable=False),
    sa.Column('financial', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('production_stage', sa.String(length=20), nullable=True),
    sa.Column('photo', sa.LargeBinary(), nullable=True),
    sa.Column('photo_type', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_cards_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards')),
    sa.UniqueConstraint('card_no_hash', name=op.f('uq_cards_card_no_hash'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_region'), ['region'], unique=False)

    op.create_table('family_links',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('holder_id', sa.String(length=24), nullable=False),
    sa.Column('member_id', sa.String(length=24), nullable=False),
    sa.Column('relation', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['holder_id'], ['persons.id'], name=op.f('fk_family_links_holder_id_persons')),
    sa.ForeignKeyConstraint(['member_id'], ['persons.id'], name=op.f('fk_family_links_member_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_family_links')),
    sa.UniqueConstraint('holder_id', 'member_id', 'relation', name=op.f('uq_family_links_holder_id_member_id_relation'))
    )
    with op.batch_alter_table('family_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_family_links_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_family_links_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_family_links_region'), ['region'], unique=False)

    op.create_table('filings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('treatment_region', sa.String(length=6), nullable=False),
    sa.Column('filing_type', sa.String(length=10), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_filings_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_filings'))
    )
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_filings_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_filings_region'), ['region'], unique=False)

    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_sessions_person_id_persons')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_region'), ['region'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=80), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('debit_account_id', sa.String(length=60), nullable=False),
    sa.Column('credit_account_id', sa.String(length=60), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('pending_id', sa.BigInteger(), nullable=True),
    sa.Column('timeout_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('ref', sa.String(length=60), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_transfers_positive')),
    sa.CheckConstraint('debit_account_id <> credit_account_id', name=op.f('ck_transfers_distinct_accounts')),
    sa.ForeignKeyConstraint(['credit_account_id'], ['ledger_accounts.id'], name=op.f('fk_transfers_credit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['debit_account_id'], ['ledger_accounts.id'], name=op.f('fk_transfers_debit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['pending_id'], ['transfers.id'], name=op.f('fk_transfers_pending_id_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers')),
    sa.UniqueConstraint('client_id', name=op.f('uq_transfers_client_id'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_credit_account_id'), ['credit_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_debit_account_id'), ['debit_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_ref'), ['ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_region'), ['region'], unique=False)

    op.create_table('visits',
    sa.Column('id', sa.String(length=30), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('insured_region', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('admission_number', sa.Integer(), nullable=False),
    sa.Column('admitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discharged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filing', sa.String(length=10), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_visits_institution_id_institutions')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_visits_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits'))
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visits_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index('ix_visits_institution_status', ['institution_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_region'), ['region'], unique=False)

    op.create_table('card_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('card_id', sa.String(length=24), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=14), nullable=True),
    sa.Column('to_status', sa.String(length=14), nullable=True),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_card_events_card_id_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_events'))
    )
    with op.batch_alter_table('card_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_events_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_card_events_region'), ['region'], unique=False)

    op.create_table('ecard_bindings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('card_id', sa.String(length=24), nullable=False),
    sa.Column('payment_institution_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('password_free_limit', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_ecard_bindings_card_id_cards')),
    sa.ForeignKeyConstraint(['payment_institution_id'], ['payment_institutions.id'], name=op.f('fk_ecard_bindings_payment_institution_id_payment_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ecard_bindings')),
    sa.UniqueConstraint('card_id', 'payment_institution_id', name=op.f('uq_ecard_bindings_card_id_payment_institution_id'))
    )
    with op.batch_alter_table('ecard_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ecard_bindings_region'), ['region'], unique=False)

    op.create_table('fee_lines',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('visit_id', sa.String(length=30), nullable=False),
    sa.Column('feedetl_sn', sa.String(length=30), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('line_class', sa.String(length=10), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('price_cap', sa.BigInteger(), nullable=True),
    sa.Column('self_pay_ratio', sa.Integer(), nullable=True),
    sa.Column('prescription', sa.Boolean(), nullable=False),
    sa.Column('prescriber', sa.String(length=60), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_fee_lines_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_lines')),
    sa.UniqueConstraint('visit_id', 'feedetl_sn', name=op.f('uq_fee_lines_visit_id_feedetl_sn'))
    )
    with op.batch_alter_table('fee_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fee_lines_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_lines_visit_id'), ['visit_id'], unique=False)

    op.create_table('settlements',
    sa.Column('id', sa.String(length=30), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('insured_region', sa.String(length=6), nullable=False),
    sa.Column('visit_id', sa.String(length=30), nullable=False),
    sa.Column('person_id', sa.String(length=24), nullable=False),
    sa.Column('institution_id', sa.String(length=20), nullable=False),
    sa.Column('msgid', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('fund_total', sa.BigInteger(), nullable=False),
    sa.Column('pool_fund', sa.BigInteger(), nullable=False),
    sa.Column('serious_illness', sa.BigInteger(), nullable=False),
    sa.Column('large_amount', sa.BigInteger(), nullable=False),
    sa.Column('assistance', sa.BigInteger(), nullable=False),
    sa.Column('account_pay', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.String(length=60), nullable=True),
    sa.Column('cash_pay', sa.BigInteger(), nullable=False),
    sa.Column('policy_version', sa.String(length=30), nullable=False),
    sa.Column('accumulator_delta', sa.Text(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_settlements_institution_id_institutions')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_settlements_person_id_persons')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_settlements_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlements')),
    sa.UniqueConstraint('institution_id', 'msgid', name=op.f('uq_settlements_institution_id_msgid'))
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlements_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlements_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlements_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlements_visit_id'), ['visit_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlements_visit_id'))
        batch_op.drop_index(batch_op.f('ix_settlements_region'))
        batch_op.drop_index(batch_op.f('ix_settlements_person_id'))
        batch_op.drop_index(batch_op.f('ix_settlements_institution_id'))

    op.drop_table('settlements')
    with op.batch_alter_table('fee_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fee_lines_visit_id'))
        batch_op.drop_index(batch_op.f('ix_fee_lines_region'))

    op.drop_table('fee_lines')
    with op.batch_alter_table('ecard_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ecard_bindings_region'))

    op.drop_table('ecard_bindings')
    with op.batch_alter_table('card_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_events_region'))
        batch_op.drop_index(batch_op.f('ix_card_events_card_id'))

    op.drop_table('card_events')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visits_region'))
        batch_op.drop_index(batch_op.f('ix_visits_person_id'))
        batch_op.drop_index('ix_visits_institution_status')
        batch_op.drop_index(batch_op.f('ix_visits_institution_id'))

    op.drop_table('visits')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_region'))
        batch_op.drop_index(batch_op.f('ix_transfers_ref'))
        batch_op.drop_index(batch_op.f('ix_transfers_debit_account_id'))
        batch_op.drop_index(batch_op.f('ix_transfers_credit_account_id'))

    op.drop_table('transfers')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_region'))

    op.drop_table('sessions')
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_filings_region'))
        batch_op.drop_index(batch_op.f('ix_filings_person_id'))

    op.drop_table('filings')
    with op.batch_alter_table('family_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_family_links_region'))
        batch_op.drop_index(batch_op.f('ix_family_links_member_id'))
        batch_op.drop_index(batch_op.f('ix_family_links_holder_id'))

    op.drop_table('family_links')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_region'))
        batch_op.drop_index(batch_op.f('ix_cards_person_id'))

    op.drop_table('cards')
    op.drop_table('accumulators')
    with op.batch_alter_table('sms_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_codes_region'))
        batch_op.drop_index(batch_op.f('ix_sms_codes_phone_hash'))

    op.drop_table('sms_codes')
    with op.batch_alter_table('sandbox_sms_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_sms_outbox_region'))
        batch_op.drop_index(batch_op.f('ix_sandbox_sms_outbox_phone_hash'))

    op.drop_table('sandbox_sms_outbox')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_region'))
        batch_op.drop_index(batch_op.f('ix_persons_phone_hash'))

    op.drop_table('persons')
    with op.batch_alter_table('payment_institutions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_institutions_region'))

    op.drop_table('payment_institutions')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_region'))

    op.drop_table('messages')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_region'))
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_owner_id'))

    op.drop_table('ledger_accounts')
    with op.batch_alter_table('institutions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_institutions_region'))

    op.drop_table('institutions')
    op.drop_table('idempotency_records')
    op.drop_table('audit_log')
    op.drop_table('audit_heads')

