"""Every table, as SQLAlchemy Core. Money columns are BIGINT fen; every row carries its region.

Each table names the package that owns it (`info={"owner": ...}`): only that package writes it; others
call it (scripts/check_architecture.py checks this on every `make test`).

Rows are partitioned by pooling region (`region`, the 6-digit admdvs code): a region's data never
depends on another's, so a deployment can shard by it. PII columns hold AES-GCM ciphertext
(`*_enc`) beside a keyed hash for lookups (`*_hash`); see yibao.crypto.pii.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


def _region(*, index: bool = True) -> Column:
    # index=False on the tables every payment writes: no query selects their rows by region alone (a region holds most
    # of them), and every row version written there costs one more index entry (issue 13).
    return Column("region", String(6), nullable=False, index=index)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False)


# ---- institutions and payment institutions -------------------------------------------------

institutions = Table(
    "institutions", metadata,
    Column("id", String(20), primary_key=True),  # fixmedins_code
    _region(),
    Column("name", String(200), nullable=False),
    Column("kind", String(10), nullable=False),  # hospital | pharmacy
    Column("level", String(10), nullable=False),  # community | level1 | level2 | level3 | pharmacy
    Column("status", String(10), nullable=False),  # active | suspended
    Column("secret_hash", String(128), nullable=False),  # API credential, hashed
    _created(),
    info={"owner": "services.agency"},
)

payment_institutions = Table(
    "payment_institutions", metadata,
    Column("id", String(40), primary_key=True),
    _region(),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # wallet | bank
    Column("status", String(12), nullable=False),  # registered (connector not yet tested) | admitted | suspended | withdrawn
    Column("admitted_at", DateTime(timezone=True)),
    Column("admission_ref", String(80)),  # the agency's admission decision
    _created(),
    info={"owner": "services.agency"},
)

# ---- people, identity, cards -----------------------------------------------------------------

persons = Table(
    "persons", metadata,
    Column("id", String(24), primary_key=True),  # psn_no
    _region(),  # insured region
    Column("id_number_enc", LargeBinary, nullable=False),
    Column("id_number_hash", String(64), nullable=False, unique=True),
    Column("name_enc", LargeBinary, nullable=False),
    Column("phone_enc", LargeBinary),
    Column("phone_hash", String(64), index=True),
    Column("birth_date", Date, nullable=False),
    Column("insurance_type", String(10), nullable=False),  # employee | resident | child
    Column("tier", Integer),
    Column("employment_status", String(12), nullable=False),  # employed | retired | none
    Column("hardship", String(20)),
    Column("enrolment_guardian_id", String(24), ForeignKey("persons.id")),  # recorded at a child's enrolment
    Column("real_name_verified_at", DateTime(timezone=True)),
    Column("real_person_verified_at", DateTime(timezone=True)),
    Column("face_template_enc", LargeBinary),  # the verifier's template reference, encrypted
    Column("status", String(10), nullable=False),  # active | suspended
    _created(),
    info={"owner": "services.people"},
)

account_credits = Table(  # personal-account credits (个人账户划入): maker-checker above the region's threshold
    "account_credits", metadata,
    Column("id", String(24), primary_key=True),
    _region(),  # the person's (insured) region: the contributions the credit draws from
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("client_id", String(80), nullable=False, unique=True),  # the request's own id: the same id twice is one credit
    Column("status", String(20), nullable=False),  # awaiting_approval | credited
    Column("requested_by", String(80), nullable=False),
    Column("approved_by", String(80)),  # a second operator, for a credit above the threshold
    Column("credited_at", DateTime(timezone=True)),
    _created(),
    CheckConstraint("amount > 0", name="positive"),
    CheckConstraint("approved_by IS NULL OR approved_by <> requested_by", name="second_operator"),
    info={"owner": "services.people"},
)

filings = Table(  # cross-region filings (异地备案)
    "filings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),  # insured region
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("treatment_region", String(6), nullable=False),
    Column("filing_type", String(10), nullable=False),  # long_term | temporary
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    _created(),
    info={"owner": "services.people"},
)

cards = Table(
    "cards", metadata,
    Column("id", String(24), primary_key=True),
    _region(),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # physical | ecard
    Column("card_no_enc", LargeBinary, nullable=False),
    Column("card_no_hash", String(64), nullable=False, unique=True),
    Column("financial", Boolean, nullable=False),  # a financial social-security card (bank function)
    Column("status", String(14), nullable=False),  # in_production | issued | active | lost | cancelled
    Column("production_stage", String(20)),  # accepted | printing | mailed | ready
    Column("photo", LargeBinary),
    Column("photo_type", String(20)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.people"},
)

person_lookups = Table(  # every look-up of a person by a number at an institution: its throttle and the enumeration watch
    "person_lookups", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),  # the institution's
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("credential_type", String(10), nullable=False),  # id_number | card | ecard | card_pin (a card read with its PIN)
    Column("outcome", String(10), nullable=False),  # found | not_found | wrong_pin
    Column("number_hash", String(64), nullable=False),  # keyed hash of the number looked up (never the number)
    Column("block_hash", String(64), nullable=False),  # keyed hash of its block (all but the last digits): neighbours share it
    Column("alert", Boolean, nullable=False),  # this look-up raised the enumeration alert (pii.lookup_enumeration)
    _created(),
    info={"owner": "services.people"},
)

Index("ix_person_lookups_recent", person_lookups.c.institution_id, person_lookups.c.created_at)

card_events = Table(
    "card_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),
    Column("card_id", String(24), ForeignKey("cards.id"), nullable=False, index=True),
    Column("event", String(20), nullable=False),
    Column("from_status", String(14)),
    Column("to_status", String(14)),
    Column("actor", String(60), nullable=False),
    _created(),
    info={"owner": "services.people"},
)

ecard_bindings = Table(
    "ecard_bindings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),
    Column("card_id", String(24), ForeignKey("cards.id"), nullable=False),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("status", String(10), nullable=False),  # bound | unbound
    Column("is_default", Boolean, nullable=False),
    Column("password_free_limit", BigInteger, nullable=False),  # fen
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("card_id", "payment_institution_id"),
    info={"owner": "services.people"},
)

family_links = Table(
    "family_links", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),
    Column("holder_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),  # account owner / guardian
    Column("member_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("relation", String(10), nullable=False),  # guardian (holder is the child's guardian) | spouse | parent | child
    Column("status", String(10), nullable=False),  # active | removed
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("holder_id", "member_id", "relation"),
    info={"owner": "services.people"},
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    _region(),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.access"},
)

face_logins = Table(  # every real-name log-in's face check (name + ID number + a live face): the failures the limit counts
    "face_logins", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),
    Column("outcome", String(24), nullable=False),  # verified | name_mismatch | face_mismatch | liveness_failed
    _created(),
    info={"owner": "services.access"},
)

Index("ix_face_logins_recent", face_logins.c.person_id, face_logins.c.created_at)

console_sessions = Table(  # a cashier's or an operator's page session: only the cookie token's hash; log-out deletes it
    "console_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    _region(),  # the institution's region; 000000 for an operator
    Column("area", String(10), nullable=False),  # cashier | admin
    Column("principal", String(80), nullable=False),  # the institution id | the operator's name
    Column("expires_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.access"},
)

sms_codes = Table(  # the log-in codes sent by text message: only a keyed hash of each (HMAC under a keyring purpose key)
    "sms_codes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),
    Column("phone_hash", String(64), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used", Boolean, nullable=False),
    _created(),
    info={"owner": "services.access"},
)

attempts = Table(  # attempts every lock-out without a table of its own counts, keyed by (kind, subject): services/access/attempts.py
    "attempts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),  # the subject's region where it has one; 000000 for a phone, an address or a credential
    Column("kind", String(24), nullable=False),  # e.g. sms_send:phone, sms_code:address, pin:holder, credential:institution
    Column("subject", String(80), nullable=False),  # a person id, an institution code, or a keyed hash (phone, client address)
    Column("failed", Boolean, nullable=False),  # a counted failure; a success ends the count for rules that reset on one
    _created(),
    info={"owner": "services.access"},
)

Index("ix_attempts_subject", attempts.c.kind, attempts.c.subject, attempts.c.created_at)

# ---- ledger (double entry, two-phase; TigerBeetle's semantics in SQL) -------------------------

ledger_accounts = Table(
    "ledger_accounts", metadata,
    Column("id", String(60), primary_key=True),  # e.g. "person:P440300000001", "fund:440300:pool"
    _region(),
    Column("kind", String(24), nullable=False),
    Column("owner_id", String(40), index=True),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    # A personal account may never be debited beyond its credits (never below zero).
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    _created(),
    CheckConstraint("debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0", name="non_negative"),
    CheckConstraint("NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted", name="no_overdraft"),
    info={"owner": "services.books"},
)

transfers = Table(
    "transfers", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client_id", String(80), nullable=False, unique=True),  # the caller's id: the same id twice is one transfer
    _region(index=False),
    Column("debit_account_id", String(60), ForeignKey("ledger_accounts.id"), nullable=False, index=True),
    Column("credit_account_id", String(60), ForeignKey("ledger_accounts.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("kind", String(10), nullable=False),  # single | pending | post | void
    Column("state", String(10), nullable=False),  # posted | pending | voided | expired (post/void rows: posted)
    Column("pending_id", BigInteger, ForeignKey("transfers.id")),  # for post / void rows
    Column("timeout_at", DateTime(timezone=True)),
    Column("code", String(30), nullable=False),  # why: settlement, cancel, contribution, refund …
    Column("ref", String(60), index=True),  # the business object (settlement id …)
    _created(),
    CheckConstraint("amount > 0", name="positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
    info={"owner": "services.books"},
)

# ---- visits, fee lines, settlements, accumulators ---------------------------------------------

visits = Table(
    "visits", metadata,
    Column("id", String(30), primary_key=True),  # mdtrt_id
    _region(index=False),  # the treatment region (institution's)
    Column("insured_region", String(6), nullable=False),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("status", String(12), nullable=False),  # open | admitted | discharged | settled | cancelled
    Column("visit_date", Date, nullable=False),
    Column("admission_number", Integer, nullable=False),
    Column("admitted_at", DateTime(timezone=True)),
    Column("discharged_at", DateTime(timezone=True)),
    Column("filing", String(10)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.care"},
)

fee_lines = Table(
    "fee_lines", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(index=False),
    Column("visit_id", String(30), ForeignKey("visits.id"), nullable=False),  # led by the unique (visit_id, feedetl_sn)
    Column("feedetl_sn", String(30), nullable=False),
    Column("code", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("line_class", String(10), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),  # 1/10000 units
    Column("price_cap", BigInteger),
    Column("self_pay_ratio", Integer),  # ppm
    Column("prescription", Boolean, nullable=False),
    Column("prescriber", String(60)),
    Column("status", String(10), nullable=False),  # active | revoked | refunded (a refund of items, after settlement)
    # What the platform decided from the catalogue (services/catalogue): the line_class, price_cap and self_pay_ratio
    # above, and beside them the codes it came from, the entry's level, the version, the limited-use flag and the reason.
    # Null on lines uploaded before the catalogue (0012).
    Column("med_list_codg", String(30)),  # the national code (hilist_code), from the upload or the institution's mapping
    Column("medins_list_codg", String(50)),  # the institution's own code, when it sent one
    Column("chrgitm_lv", String(3)),  # the entry's level 01 | 02 | 03; null: no entry
    Column("catalogue_version", String(40)),
    Column("lmt_used_flag", String(1)),
    Column("hosp_appr_flag", Boolean),
    Column("memo", String(300)),
    Column("fee_ocur_time", DateTime(timezone=True)),
    Column("item_category", String(80)),  # the entry's item categories, |-separated, on a line the fund pays (0029)
    _created(),
    UniqueConstraint("visit_id", "feedetl_sn"),
    info={"owner": "services.care"},
)

settlements = Table(
    "settlements", metadata,
    Column("id", String(30), primary_key=True),  # setl_id
    _region(index=False),  # treatment region
    Column("insured_region", String(6), nullable=False),
    Column("visit_id", String(30), ForeignKey("visits.id"), nullable=False, index=True),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),  # led by the unique (institution_id, msgid)
    Column("msgid", String(40), nullable=False),  # the settle message id (for 冲正 by omsgid), unique per institution
    Column("status", String(10), nullable=False),  # settled | cancelled
    Column("year", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("fund_total", BigInteger, nullable=False),
    Column("pool_fund", BigInteger, nullable=False),
    Column("serious_illness", BigInteger, nullable=False),
    Column("large_amount", BigInteger, nullable=False),
    Column("other", BigInteger, nullable=False),  # oth_pay: a layer the policy reports as other funds (0030)
    Column("assistance", BigInteger, nullable=False),
    Column("account_pay", BigInteger, nullable=False),
    Column("account_id", String(60)),  # the paying personal account (own, guardian's or relative's)
    Column("cash_pay", BigInteger, nullable=False),
    Column("policy_version", String(30), nullable=False),
    Column("accumulator_delta", Text, nullable=False),  # JSON of fen ints, negated on cancel
    Column("document", Text, nullable=False),  # the setlinfo document returned to the caller
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", String(20)),  # cancel | reversal
    _created(),
    UniqueConstraint("institution_id", "msgid"),
    info={"owner": "services.care"},
)
# A pooling region's year person by person, in the order the settlements were made: the policy what-if replays it
# (services/care/whatif.py) without sorting the year.
Index("ix_settlements_replay", settlements.c.insured_region, settlements.c.year, settlements.c.person_id, settlements.c.created_at)
Index("ix_settlements_made", settlements.c.created_at)  # /admin: a period's settlements (services/books/volumes.py)

messages = Table(  # message ids of money-changing requests: a settle and a reversal claim the same key
    "messages", metadata,
    Column("institution_id", String(20), primary_key=True),  # ids are the sender's: one hospital's never block another's
    Column("msgid", String(40), primary_key=True),
    _region(),
    Column("infno", String(6), nullable=False),  # 2207 settle, 2208 cancel, 2601 reversal
    Column("state", String(30), nullable=False),  # done | reversed | reversed_before_arrival
    Column("ref", String(40)),  # the settlement it concerns
    _created(),
    info={"owner": "services.care"},
)

presences = Table(  # a credential an account's owner presented at an institution: the one settlement that debits the account uses it
    "presences", metadata,
    Column("id", String(24), primary_key=True),
    _region(index=False),  # the institution's
    Column("kind", String(10), nullable=False),  # paycode | face | card_pin | app | rebill | wallet (services/care/presence.py)
    Column("credential_id", String(60), nullable=False),  # the scanned code's row, the face authorization, the card read, the order …
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("visit_id", String(30), ForeignKey("visits.id")),  # presented for this visit, or bound to the first visit it pays
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),  # whom the credential names (a child, for her code)
    Column("owner_id", String(24), ForeignKey("persons.id"), nullable=False),  # who presented it (a guardian showing the child's code)
    Column("terminal_id", String(40)),
    Column("status", String(8), nullable=False),  # live | used
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("setl_id", String(30)),  # the settlement that used it
    _created(),
    UniqueConstraint("kind", "credential_id"),  # one presence per credential shown
    info={"owner": "services.care"},
)

# Every look-up of presences names the presenter or the person named. An index led by the hospital (ix_presences_live,
# until 0016) made PostgreSQL's generic plan for a settlement's look-up read every live presence of the hospital
# (thousands at a busy one) and filter them: 1.7 ms of the database's CPU per settlement (issue 13, docs/benchmarks.md).
Index("ix_presences_owner_live", presences.c.owner_id, presences.c.status)
Index("ix_presences_person_live", presences.c.person_id, presences.c.status)

NON_NEGATIVE_ACCUMULATORS = (
    "outpatient_deductible_used >= 0 AND pool_fund_paid >= 0 AND outpatient_pool_paid >= 0 AND inpatient_pool_paid >= 0 AND "
    "inpatient_eligible_used >= 0 AND outpatient_eligible_used >= 0 AND inpatient_in_scope >= 0 AND outpatient_in_scope >= 0 AND "
    "serious_illness_base >= 0 AND serious_illness_paid >= 0 AND large_amount_base >= 0 AND large_amount_paid >= 0 AND "
    "beyond_cap_base >= 0 AND beyond_cap_paid >= 0 AND assistance_base >= 0 AND assistance_paid >= 0")
accumulators = Table(
    "accumulators", metadata,
    Column("region", String(6), nullable=False),
    Column("person_id", String(24), ForeignKey("persons.id"), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("outpatient_deductible_used", BigInteger, nullable=False),
    Column("pool_fund_paid", BigInteger, nullable=False),
    Column("outpatient_pool_paid", BigInteger, nullable=False),
    Column("inpatient_pool_paid", BigInteger, nullable=False),
    Column("inpatient_eligible_used", BigInteger, nullable=False),  # one per eligible-cost ceiling accumulator (0030)
    Column("outpatient_eligible_used", BigInteger, nullable=False),
    Column("inpatient_in_scope", BigInteger, nullable=False),
    Column("outpatient_in_scope", BigInteger, nullable=False),
    Column("serious_illness_base", BigInteger, nullable=False),
    Column("serious_illness_paid", BigInteger, nullable=False),
    Column("large_amount_base", BigInteger, nullable=False),
    Column("large_amount_paid", BigInteger, nullable=False),
    Column("beyond_cap_base", BigInteger, nullable=False),
    Column("beyond_cap_paid", BigInteger, nullable=False),
    Column("assistance_base", BigInteger, nullable=False),
    Column("assistance_paid", BigInteger, nullable=False),
    Column("admissions", Integer, nullable=False),
    CheckConstraint(NON_NEGATIVE_ACCUMULATORS, name="non_negative"),
    info={"owner": "services.books"},
)

# ---- the national interface gateway (FSI, migration 0013) ---------------------------------------

fsi_credentials = Table(  # an institution's gateway credential: x-tif-paasid is its code, the token signs each request
    "fsi_credentials", metadata,
    Column("institution_id", String(20), ForeignKey("institutions.id"), primary_key=True),
    _region(),
    Column("token_enc", LargeBinary, nullable=False),  # AES-GCM under the keyring: the gateway recomputes signatures with it
    Column("sm4_key_enc", LargeBinary),  # set: input/output SM4-encrypted (the provincial mode), else plain
    Column("sm2_public", String(160)),  # set: cainfo must be the institution's SM2 signature of the plaintext input
    Column("status", String(10), nullable=False),  # active | revoked
    Column("issued_by", String(60), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.agency"},
)

fsi_nonces = Table(  # nonces seen within the timestamp window: a request whose nonce is here is a replay
    "fsi_nonces", metadata,
    Column("institution_id", String(20), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("region", String(6), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),  # past the window: deleted
    _created(),
    info={"owner": "services.access"},
)

fsi_signins = Table(  # 9001 sign-ins: the sign_no every later message carries, until 9002 signs it out
    "fsi_signins", metadata,
    Column("sign_no", String(30), primary_key=True),
    _region(),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),
    Column("opter_no", String(30), nullable=False),
    Column("mac", String(40)),
    Column("ip", String(60)),
    Column("status", String(10), nullable=False),  # in | out
    Column("signed_out_at", DateTime(timezone=True)),
    _created(),
    info={"owner": "services.access"},
)

# ---- platform: idempotency and audit ---------------------------------------------------------

idempotency_records = Table(
    "idempotency_records", metadata,
    Column("scope", String(80), primary_key=True),  # audience:principal
    Column("key", String(100), primary_key=True),
    Column("region", String(6), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    _created(),
    info={"owner": "runtime"},
)

platform_marks = Table(  # facts about the database itself, e.g. that the demo world was loaded into it (runtime/marks.py)
    "platform_marks", metadata,
    Column("name", String(80), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "runtime"},
)

audit_log = Table(  # append-only, hash-chained per region and lane (services/books/audit.py)
    "audit_log", metadata,
    Column("region", String(6), primary_key=True),
    Column("lane", SmallInteger, primary_key=True, server_default="0"),
    Column("seq", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),  # HMAC-SHA256 (keyed), or SHA-256 before the chain was keyed
    # The transfers the entry's unit of work wrote, as [client_id, region, debit, credit, amount]: verify checks
    # every transfer in the ledger against them (services/books/audit.py).
    Column("transfers", Text),
    info={"owner": "services.books"},
)
Index("ix_audit_log_at", audit_log.c.at)  # /admin/audit: the log newest first, a page at a time (services/books/audit.py search)

audit_heads = Table(  # one head per lane of a region's trail
    "audit_heads", metadata,
    Column("region", String(6), primary_key=True),
    Column("lane", SmallInteger, primary_key=True, server_default="0"),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # Entries from this sequence number on are keyed; earlier ones (before migration 0010) are plain SHA-256.
    Column("keyed_from", BigInteger, nullable=False, server_default="1"),
    # Transfers up to this id were written before the audit trail vouched for transfers (migration 0010).
    Column("legacy_transfers_upto", BigInteger, nullable=False, server_default="0"),
    info={"owner": "services.books"},
)


# ---- dynamic payment codes (动态医保码; services/payments/paycodes.py) ------------------------------------

paycode_slots = Table(  # per card that ever showed a code: its opaque slot in the code and its latest counter
    "paycode_slots", metadata,
    Column("card_id", String(24), ForeignKey("cards.id"), primary_key=True),
    _region(),  # the card's region
    Column("slot", String(8), nullable=False, unique=True),
    Column("counter", BigInteger, nullable=False),  # the latest code's; a new code takes counter + 1
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.payments"},
)

paycodes = Table(  # one row per code issued; single use is a conditional UPDATE of status live → used
    "paycodes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),  # the card's (insured) region
    Column("card_id", String(24), ForeignKey("cards.id"), nullable=False),
    Column("counter", BigInteger, nullable=False),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),  # whose card it is
    Column("holder_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),  # who showed it: the person or a guardian
    Column("status", String(10), nullable=False),  # live | used | replaced (expiry is expires_at, not a status)
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),  # when it was used or replaced
    Column("institution_id", String(20), ForeignKey("institutions.id")),  # who consumed it
    Column("terminal_id", String(40)),
    _created(),
    UniqueConstraint("card_id", "counter"),
    info={"owner": "services.payments"},
)

paycode_refusals = Table(  # every refused scan: the trace, and the guesses the rate limit counts
    "paycode_refusals", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),  # the scanning institution's region
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("terminal_id", String(40), nullable=False),  # "" when the scan named no terminal
    Column("reason", String(40), nullable=False),  # the refusal's error code
    Column("counted", Boolean, nullable=False),  # a guess (no such code, bad MAC): counts toward the limit
    Column("card_id", String(24)),  # set when the code was genuine (used, expired, replaced …)
    _created(),
    info={"owner": "services.payments"},
)

Index("ix_paycode_refusals_guesses", paycode_refusals.c.institution_id, paycode_refusals.c.terminal_id, paycode_refusals.c.created_at)

# ---- face payment (刷脸支付; services/payments/face.py) ------------------------------------------------

face_attempts = Table(  # every 1:1 face check at a terminal: the trace, and the failures the limit counts
    "face_attempts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),  # the institution's region
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),  # whose face was checked (the payer)
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("terminal_id", String(40), nullable=False),  # "" when the terminal did not name itself
    Column("outcome", String(24), nullable=False),  # verified | face_mismatch | liveness_failed
    _created(),
    info={"owner": "services.payments"},
)

Index("ix_face_attempts_recent", face_attempts.c.person_id, face_attempts.c.institution_id, face_attempts.c.created_at)
Index("ix_face_attempts_person", face_attempts.c.person_id, face_attempts.c.created_at)  # the limit counts per person, across institutions

face_authorizations = Table(  # a verified face, good for one payment at that institution, briefly
    "face_authorizations", metadata,
    Column("id", String(40), primary_key=True),
    _region(),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),  # the patient
    Column("holder_id", String(24), ForeignKey("persons.id"), nullable=False),  # whose face: the patient or a guardian
    Column("relation", String(10), nullable=False),  # self | guardian
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("terminal_id", String(40), nullable=False),
    Column("status", String(8), nullable=False),  # live | used
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    _created(),
    info={"owner": "services.payments"},
)

# ---- payments: orders, agreements, notifications, PINs (services/payments/) -----------------------

payment_orders = Table(  # one per payment: the settlement held, then the cash collected, then all posted or all voided
    "payment_orders", metadata,
    Column("id", String(32), primary_key=True),  # also our out_trade_no at the payment institution
    _region(index=False),  # the treatment region (the institution's)
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),  # led by the unique (institution_id, request_key)
    Column("request_key", String(100), nullable=False),  # the hospital's Idempotency-Key: a retry resumes this order
    Column("request_hash", String(64), nullable=False),
    Column("method", String(12), nullable=False),  # onecode (later: mobile, face, credit)
    Column("visit_id", String(30), ForeignKey("visits.id"), nullable=False, index=True),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),  # the patient
    Column("payer_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),  # whose binding pays the cash
    Column("setl_id", String(30)),
    Column("paycode_id", BigInteger),
    Column("terminal_id", String(40)),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id")),
    Column("status", String(24), nullable=False),  # domain/payment_order.py
    Column("void_reason", String(30)),
    Column("total", BigInteger, nullable=False),
    Column("fund_total", BigInteger, nullable=False),
    Column("account_pay", BigInteger, nullable=False),
    Column("cash_pay", BigInteger, nullable=False),
    Column("trade_no", String(64)),  # the institution's id for the cash trade
    Column("pin_attempts", Integer, nullable=False),
    Column("confirm_expires_at", DateTime(timezone=True)),
    Column("anomaly", String(40)),  # e.g. cash collected after the order was voided: refund it
    Column("cash_source", String(10)),  # NULL: the payer's payment institution (Channel.pay); "credit": the payer's credit line; "wallet": collected by the wallet for the hospital (med-ins order)
    Column("completed_at", DateTime(timezone=True)),
    # When the institution accepted the cash request, signed (WeChat's 204, UnionPay's 00, Alipay's 10003) with its result
    # still unknown: its "not found" is then not believed for cash.ACCEPTED_WAIT (services/payments/cash.py)
    Column("cash_accepted_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("institution_id", "request_key"),
    CheckConstraint("total = fund_total + account_pay + cash_pay", name="split"),
    CheckConstraint("fund_total >= 0 AND account_pay >= 0 AND cash_pay >= 0", name="non_negative"),
    info={"owner": "services.payments"},
)

Index("ix_payment_orders_status_updated", payment_orders.c.status, payment_orders.c.updated_at)
Index("ux_payment_orders_paycode", payment_orders.c.paycode_id, unique=True)  # one payment per code (or scan), ever
# a day's reconciliation reads an institution's orders completed that day (services/reconciliation/runs.legs_of_day)
Index("ix_payment_orders_pi_completed", payment_orders.c.payment_institution_id, payment_orders.c.completed_at)

his_callbacks = Table(  # where a hospital wants payment results POSTed, and the secret they are signed with (HMAC-SHA256)
    "his_callbacks", metadata,
    Column("institution_id", String(20), ForeignKey("institutions.id"), primary_key=True),
    _region(),
    Column("url", String(300), nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),  # PII keyring, context "his callback secret"
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.payments"},
)

callback_deliveries = Table(  # the outbox: written in the unit that ends the order, delivered (and retried) after it
    "callback_deliveries", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),
    Column("order_id", String(32), ForeignKey("payment_orders.id"), nullable=False),
    Column("event", String(30), nullable=False),  # payment.completed | payment.voided | refund.*
    Column("body", Text, nullable=False),  # the exact bytes signed and sent (UTF-8 JSON)
    Column("status", String(10), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer),  # the hospital's HTTP status on the last attempt
    Column("last_error", String(200)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    _created(),
    UniqueConstraint("order_id", "event"),
    info={"owner": "services.payments"},
)

payment_refunds = Table(  # one per refund of a payment order: what it gives back, and the institution's answer for the cash
    "payment_refunds", metadata,
    Column("id", String(32), primary_key=True),  # also our out_refund_no at the payment institution
    _region(),
    Column("order_id", String(32), ForeignKey("payment_orders.id"), nullable=False, index=True),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("request_key", String(100), nullable=False),  # the hospital's Idempotency-Key: a retry resumes this refund
    Column("request_hash", String(64), nullable=False),
    Column("scope", String(10), nullable=False),  # all | cash | insurance | lines | items
    Column("status", String(12), nullable=False),  # requested | unknown | succeeded | failed
    Column("insurance_fen", BigInteger, nullable=False),  # fund + account given back
    Column("cash_fen", BigInteger, nullable=False),  # cash asked back from the institution
    Column("refund_no", String(64)),  # the institution's id for the refund
    Column("error_code", String(40)),
    Column("lines_to_keep", Text),  # scope lines: JSON list of the feedetl_sn re-settled in a new order
    Column("rebill_order_id", String(32)),  # scope lines: the new order for the lines kept
    Column("items", Text),  # scope items: JSON list of the feedetl_sn refunded (the rest priced again, same settlement)
    Column("legs", Text),  # scope items: JSON {leg: fen} given back of each leg (settlement.LEGS); null: whole parts
    Column("accumulator_delta", Text),  # scope items: the remaining items' delta to the year's totals (applied on success)
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("institution_id", "request_key"),
    CheckConstraint("insurance_fen >= 0 AND cash_fen >= 0", name="non_negative"),
    info={"owner": "services.payments"},
)

bill_tokens = Table(  # a bill published over the national interface (6201): its payToken's hash and the hospital's order number
    "bill_tokens", metadata,
    Column("order_id", String(32), ForeignKey("payment_orders.id"), primary_key=True),  # payOrdId
    _region(),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("token_hash", String(64), nullable=False),  # SHA-256 of the payToken (256 random bits): the token is answered once, never kept
    Column("med_org_ord", String(40), nullable=False),  # medOrgOrd, the HIS's own order number, answered back by 6301
    _created(),
    info={"owner": "services.payments"},
)

med_ins_auths = Table(  # 医保移动支付授权: a holder's authorisation for a wallet (authCode → pay_auth_no), single use, short-lived
    "med_ins_auths", metadata,
    Column("id", String(24), primary_key=True),
    _region(),  # the holder's
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False),  # the holder who authorised (their own account)
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),  # the wallet it is for
    Column("code_hash", String(64), nullable=False, unique=True),  # SHA-256 of the authCode (answered once to the holder)
    Column("pay_auth_hash", String(64), unique=True),  # SHA-256 of the pay_auth_no (answered once to the wallet)
    Column("status", String(10), nullable=False),  # code | authorised | bound | used (services/payments/medins.py)
    Column("med_inst_no", String(20)),  # the hospital the wallet asked the pay_auth_no for (WeChat's med_inst_no); 6201 must be its
    Column("order_id", String(32), ForeignKey("payment_orders.id"), unique=True),  # the order it was bound to (6201 / 6202)
    Column("mix_trade_no", String(64), unique=True),  # the wallet's mixed order for it (POST /v3/med-ins/orders)
    Column("requested_at", DateTime(timezone=True)),  # when the wallet's `request` was recorded (the self-pay part asked for)
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the authCode's life, then the pay_auth_no's
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.payments"},
)

wallet_nonces = Table(  # the Wechatpay-Nonce of each signed request a wallet sent the platform, kept two timestamp windows: a replay
    "wallet_nonces", metadata,
    Column("payment_institution_id", String(40), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),  # past two windows: deleted
    _created(),
    info={"owner": "services.payments"},
)

backstop_liabilities = Table(  # 兜底责任 (seed 002): a fund loss caused by a mobile payment, charged to the hospital
    "backstop_liabilities", metadata,
    Column("id", String(32), primary_key=True),
    _region(),  # the hospital's (treatment) region
    Column("order_id", String(32), ForeignKey("payment_orders.id"), nullable=False, index=True),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),  # charged
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id")),  # recourse against
    Column("amount", BigInteger, nullable=False),
    Column("cause", String(500), nullable=False),
    Column("recovered", BigInteger, nullable=False),  # by recourse, so far
    Column("status", String(12), nullable=False),  # charged | recovering | recovered
    Column("actor", String(80), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    CheckConstraint("amount > 0 AND recovered >= 0 AND recovered <= amount", name="amounts"),
    info={"owner": "services.payments"},
)

liability_recourses = Table(  # what the hospital recovered from the payment institution, each time
    "liability_recourses", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),
    Column("liability_id", String(32), ForeignKey("backstop_liabilities.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("note", String(500)),
    Column("actor", String(80), nullable=False),
    _created(),
    CheckConstraint("amount > 0", name="positive"),
    info={"owner": "services.payments"},
)

Index("ix_payment_refunds_status_updated", payment_refunds.c.status, payment_refunds.c.updated_at)
Index("ix_payment_refunds_status_completed", payment_refunds.c.status, payment_refunds.c.completed_at)  # and the refunds given back that day

Index("ix_callback_deliveries_due", callback_deliveries.c.status, callback_deliveries.c.next_attempt_at)

channel_configs = Table(  # how the platform reaches an admitted payment institution (its connector and keys)
    "channel_configs", metadata,
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), primary_key=True),
    _region(),
    Column("connector", String(10), nullable=False),  # wxpay | alipay | unionpay | bank
    Column("base_url", String(300), nullable=False),
    Column("merchant_id", String(64), nullable=False),  # mchid | app_id | merId | merchant id
    Column("app_id", String(64)),  # wxpay's appid
    Column("private_key_enc", LargeBinary),  # ours (PEM), encrypted with the PII keyring
    Column("shared_secret_enc", LargeBinary),  # wxpay's API v3 key or the bank's HMAC secret, encrypted
    Column("institution_public_key", Text),  # theirs (PEM): verifies answers and notifications
    Column("notify_url", String(300)),
    Column("timeout_ms", Integer, nullable=False),
    # WeChat Pay only (NULL for the others): how answers and notifications are identified — the platform public key by the
    # id WeChat assigned it (`PUB_KEY_ID_…`), platform certificates downloaded from /v3/certificates, or both — and the
    # papay template (plan_id) the holders' contracts are signed under.
    Column("platform_key_id", String(64)),
    Column("certificate_mode", String(12)),  # public_key | certificates | both
    Column("plan_id", Integer),
    Column("deduct_notice", Boolean),  # wxpay: the template requires a 预扣费通知 before each deduction (connector sends it)
    Column("version", Integer, nullable=False),  # bumped on every change: built connectors are cached per version
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.agency"},
)

channel_agreements = Table(  # a holder's password-free agreement (免密协议) at a payment institution
    "channel_agreements", metadata,
    Column("person_id", String(24), ForeignKey("persons.id"), primary_key=True),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), primary_key=True),
    _region(),
    Column("out_agreement_no", String(32), nullable=False, unique=True),  # of this generation (agreements.out_agreement_no)
    # 1, 2, …: a holder who unbound (the agreement terminated) and signs again gets a new number, never the terminated one's
    Column("generation", Integer, nullable=False, server_default="1"),
    Column("agreement_no", String(64)),  # the institution's, once the holder has signed (NULL while pending)
    Column("limit_fen", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),  # pending | active | terminating (unbound, the institution not yet confirming) | terminated
    Column("signing_started_at", DateTime(timezone=True)),  # when the holder's signing was last started (UnionPay's query names it)
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.payments"},
)

channel_notifications = Table(  # verified notifications acted on: the unique key is the durable dedup claim
    "channel_notifications", metadata,
    Column("payment_institution_id", String(40), primary_key=True),
    Column("dedup_key", String(200), primary_key=True),
    _region(),
    Column("kind", String(12), nullable=False),
    Column("out_trade_no", String(40)),
    Column("status", String(20), nullable=False),
    Column("effect", String(30), nullable=False),  # what the platform did: completed | voided | ignored | anomaly
    _created(),
    info={"owner": "services.payments"},
)

payment_pins = Table(  # a holder's 6-digit payment PIN: a salted, keyed scrypt hash
    "payment_pins", metadata,
    Column("person_id", String(24), ForeignKey("persons.id"), primary_key=True),
    _region(),
    Column("pin_hash", String(128), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("failed", Integer, nullable=False),  # wrong old PINs when changing it
    Column("locked_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.payments"},
)

# ---- credit payment (信用支付; services/credit/) -------------------------------------------------

credit_enrolments = Table(  # a holder's contract with a bank: consent, the bank's decision, the line we let them use
    "credit_enrolments", metadata,
    Column("id", String(32), primary_key=True),  # our out_agreement_no at the bank
    _region(),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("status", String(12), nullable=False),  # pending | active | suspended | refused
    Column("consent_version", String(40), nullable=False),
    Column("consent_accepted_at", DateTime(timezone=True), nullable=False),
    Column("agreement_no", String(64)),  # the bank's
    Column("score", Integer),
    Column("bank_limit", BigInteger),  # what the bank granted
    Column("limit_fen", BigInteger, nullable=False),  # what the holder may use: the bank's line capped by the region
    Column("single_limit", BigInteger, nullable=False),  # asked of the bank per payment
    Column("bank_status", String(12)),  # the line's status as the bank last told it
    Column("refusal_code", String(40)),
    Column("suspended_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("person_id", "payment_institution_id"),
    info={"owner": "services.credit"},
)

credit_reservations = Table(  # the cash share of one payment order held on a line, then captured or released
    "credit_reservations", metadata,
    Column("order_ref", String(32), primary_key=True),  # the payment order's number: our out_trade_no at the bank
    _region(),
    Column("enrolment_id", String(32), ForeignKey("credit_enrolments.id"), nullable=False, index=True),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(10), nullable=False),  # holding | reserved | unknown | captured | released | failed
    Column("bank_ref", String(64)),
    Column("error_code", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    CheckConstraint("amount > 0", name="positive"),
    info={"owner": "services.credit"},
)

credit_bills = Table(  # one per captured payment (the bank's bill number)
    "credit_bills", metadata,
    Column("bill_no", String(40), primary_key=True),
    _region(),
    Column("enrolment_id", String(32), ForeignKey("credit_enrolments.id"), nullable=False, index=True),
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("order_ref", String(32), ForeignKey("credit_reservations.order_ref"), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("repaid", BigInteger, nullable=False),
    Column("paid_on", Date, nullable=False),  # the Beijing day the bank paid the hospital
    Column("due_date", Date, nullable=False, index=True),  # paid_on + the region's interest-free days
    Column("bank_due_date", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    CheckConstraint("repaid >= 0 AND repaid <= amount", name="repaid_within_amount"),
    info={"owner": "services.credit"},
)

credit_repayments = Table(
    "credit_repayments", metadata,
    Column("id", String(32), primary_key=True),  # our out_repayment_no at the bank
    _region(),
    Column("bill_no", String(40), ForeignKey("credit_bills.bill_no"), nullable=False, index=True),
    Column("payer_id", String(24), ForeignKey("persons.id")),  # None: repaid at the bank, learned from it
    Column("amount", BigInteger, nullable=False),
    Column("state", String(10), nullable=False),  # pending | unknown | succeeded | failed
    Column("error_code", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    CheckConstraint("amount > 0", name="positive"),
    info={"owner": "services.credit"},
)

credit_reminders = Table(  # one per bill and kind: the reminder job may run any number of times
    "credit_reminders", metadata,
    Column("bill_no", String(40), ForeignKey("credit_bills.bill_no"), primary_key=True),
    Column("kind", String(12), primary_key=True),  # d-N | d0 | overdue
    _region(),
    Column("sms_status", String(10), nullable=False),  # pending (to send) | sent | no_phone (nothing to send to) | repaid
    Column("sms_id", String(64)),  # the SMS gateway's id of the message, once sent
    _created(),
    info={"owner": "services.credit"},
)

credit_notifications = Table(  # bank notifications acted on: the durable dedup claim, written with the effect
    "credit_notifications", metadata,
    Column("payment_institution_id", String(40), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("status", String(20), primary_key=True),
    _region(),
    Column("event_id", String(64), nullable=False),
    _created(),
    info={"owner": "services.credit"},
)


# ---- the catalogue (医保目录) and the institutions' mappings to it (对照) -------------------------------------

catalogue_versions = Table(  # one imported file: a region's whole catalogue, in force from begndate until a later version's
    "catalogue_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _region(),
    Column("ver", String(40), nullable=False),
    Column("begndate", Date, nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the entries: re-importing the same version is a no-op
    Column("source", String(200), nullable=False),
    Column("entries", Integer, nullable=False),
    Column("imported_by", String(80), nullable=False),
    _created(),
    UniqueConstraint("region", "ver"),
    info={"owner": "services.catalogue"},
)

catalogue_entries = Table(
    "catalogue_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("catalogue_versions.id"), nullable=False),
    _region(),
    Column("hilist_code", String(30), nullable=False),
    Column("hilist_name", String(200), nullable=False),
    Column("list_type", String(3), nullable=False),
    Column("chrgitm_lv", String(3), nullable=False),
    Column("pric_uplmt_amt", BigInteger),  # fen per unit
    Column("selfpay_prop", Integer),  # ppm
    Column("fund_prop", Integer),  # ppm; stored, not yet used by the engine
    Column("lmt_med_type", String(80)),  # visit kinds separated by |
    Column("lmt_medins_lv", String(10)),
    Column("lmt_cnt", BigInteger),  # 1/10000 units per visit
    Column("lmt_cnt_day", BigInteger),  # 1/10000 units per day of the fee
    Column("lmt_age_min", Integer),
    Column("lmt_age_max", Integer),
    Column("hosp_appr_flag", Boolean, nullable=False),
    Column("rx_flag", Boolean, nullable=False),
    Column("begndate", Date, nullable=False),
    Column("enddate", Date),
    Column("updt_time", DateTime(timezone=True), nullable=False),  # when this content first appeared in the region's catalogue
    Column("item_category", String(80)),  # implant | imported | negotiated, |-separated (0029)
    UniqueConstraint("version_id", "hilist_code"),
    Index("ix_catalogue_entries_region_hilist_code", "region", "hilist_code"),
    info={"owner": "services.catalogue"},
)

item_mappings = Table(  # 对照: an institution's own item code to a national code
    "item_mappings", metadata,
    Column("institution_id", String(20), ForeignKey("institutions.id"), primary_key=True),
    Column("medins_list_codg", String(50), primary_key=True),
    _region(),
    Column("medins_list_name", String(200), nullable=False),
    Column("hilist_code", String(30), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.catalogue"},
)


# ---- files exchanged with institutions (the national interface's 9101 upload, 9102 download) -----------------

exchange_files = Table(  # a file the platform made for an institution (a 1301-series catalogue download) or one it uploaded
    "exchange_files", metadata,
    Column("file_qury_no", String(40), primary_key=True),  # unguessable; only its institution may fetch it
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),
    _region(),
    Column("infno", String(4), nullable=False),  # what made it: 1301, 1302, 1305, 1306 (a download) or 9101 (an upload)
    Column("filename", String(200), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data_cnt", Integer),  # the rows of a catalogue download; None for an upload
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    _created(),
    info={"owner": "services.files"},
)


# ---- reconciliation with the payment institutions (services/reconciliation, docs/reconciliation.md) ------------

reconciliation_runs = Table(  # one per (payment institution, Beijing day): a re-run updates it (its counts as of the last run)
    "reconciliation_runs", metadata,
    Column("id", String(32), primary_key=True),
    _region(),  # the payment institution's
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(12), nullable=False),  # balanced (every difference found is resolved) | open | failed
    Column("runs", Integer, nullable=False),  # how many times the day was reconciled
    Column("statement_trades", Integer, nullable=False),
    Column("statement_trade_fen", BigInteger, nullable=False),
    Column("statement_refunds", Integer, nullable=False),
    Column("statement_refund_fen", BigInteger, nullable=False),
    Column("platform_legs", Integer, nullable=False),  # the platform's cash legs of the day (and carried from the pool)
    Column("platform_fen", BigInteger, nullable=False),  # trades minus refunds, as the platform's books have them
    Column("matched", Integer, nullable=False),
    Column("pooled", Integer, nullable=False),  # rows and legs left waiting for the next day's run
    Column("carried", Integer, nullable=False),  # rows and legs the previous day's run left in the pool
    Column("differences", Integer, nullable=False),  # found by the last run (resolved or not)
    Column("open_differences", Integer, nullable=False),
    Column("error", String(300)),  # failed: why (the statement could not be had)
    Column("finished_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("payment_institution_id", "day"),
    info={"owner": "services.reconciliation"},
)

reconciliation_differences = Table(  # one per difference, named by its day, class and the leg's number: a re-run finds the same row
    "reconciliation_differences", metadata,
    Column("id", String(32), primary_key=True),
    _region(),
    Column("run_id", String(32), ForeignKey("reconciliation_runs.id"), nullable=False, index=True),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("cls", String(24), nullable=False),  # domain/reconciliation.py CLASSES
    Column("kind", String(8), nullable=False),  # trade | refund
    Column("key", String(64), nullable=False),  # our number: out_trade_no, or out_refund_no
    Column("out_trade_no", String(64), nullable=False),
    Column("institution_ref", String(64)),  # the institution's number in its statement (trade_no / refund_id)
    Column("institution_fen", BigInteger),
    Column("institution_at", DateTime(timezone=True)),
    Column("platform_fen", BigInteger),
    Column("platform_at", DateTime(timezone=True)),
    Column("leg_status", String(10)),  # done | pending | voided | failed (None: no platform leg)
    Column("platform_state", String(24)),  # the order's or the refund's own status
    Column("order_id", String(32)),
    Column("refund_id", String(32)),
    Column("count", Integer, nullable=False),  # a duplicate: how many times it is listed
    Column("status", String(10), nullable=False),  # open | resolved | cleared (not found again by a re-run)
    Column("resolution", String(24)),
    Column("reason", String(500)),
    Column("note", String(500)),
    Column("outcome", Text),  # JSON: what the resolution did (the query's answer, the refund, the transfer)
    Column("resolved_by", String(80)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("payment_institution_id", "day", "cls", "kind", "key"),
    info={"owner": "services.reconciliation"},
)
Index("ix_reconciliation_differences_status", reconciliation_differences.c.status, reconciliation_differences.c.day)

reconciliation_pool = Table(  # rows and legs of the cut-off minutes before midnight, waiting for the next day's run
    "reconciliation_pool", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _region(),
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("day", Date, nullable=False),  # the run that left it (the next day's run takes it)
    Column("side", String(12), nullable=False),  # institution (a statement row) | platform (a cash leg)
    Column("kind", String(8), nullable=False),
    Column("key", String(64), nullable=False),
    Column("item", Text, nullable=False),  # JSON of the row or leg
    _created(),
    UniqueConstraint("payment_institution_id", "day", "side", "kind", "key"),
    info={"owner": "services.reconciliation"},
)

reconciliation_offday = Table(  # a leg matched by a statement of another day than its own: its own day's run does not miss it
    "reconciliation_offday", metadata,
    Column("payment_institution_id", String(40), ForeignKey("payment_institutions.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("key", String(64), primary_key=True),
    _region(),
    Column("statement_day", Date, nullable=False),
    _created(),
    info={"owner": "services.reconciliation"},
)

# ---- pilot governance (seed 002): who may take mobile-mode payments, under which agreement --------------------------

pilot_applications = Table(  # an institution's application to its agency, or a pooling region's to the province
    "pilot_applications", metadata,
    Column("id", String(24), primary_key=True),
    Column("applicant", String(12), nullable=False),  # institution | region
    Column("institution_id", String(20), ForeignKey("institutions.id"), index=True),  # an institution's application
    _region(),  # the institution's region, or the applying region
    Column("modes", String(40), nullable=False),  # comma-separated: onecode, face, mobile, credit
    Column("assessed_by", String(100), nullable=False),  # who made the risk assessment
    Column("status", String(12), nullable=False),  # submitted | approved | rejected
    Column("submitted_by", String(60), nullable=False),
    Column("reviewed_by", String(60)),
    Column("reviewed_at", DateTime(timezone=True)),
    Column("review_note", String(300)),
    _created(),
    info={"owner": "services.agency"},
)

# One open (submitted) application per applicant at a time: an institution, or a region applying for itself.
Index("ux_pilot_applications_open_institution", pilot_applications.c.institution_id, unique=True,
      sqlite_where=(pilot_applications.c.status == "submitted") & (pilot_applications.c.applicant == "institution"),
      postgresql_where=(pilot_applications.c.status == "submitted") & (pilot_applications.c.applicant == "institution"))
Index("ux_pilot_applications_open_region", pilot_applications.c.region, unique=True,
      sqlite_where=(pilot_applications.c.status == "submitted") & (pilot_applications.c.applicant == "region"),
      postgresql_where=(pilot_applications.c.status == "submitted") & (pilot_applications.c.applicant == "region"))

pilot_documents = Table(  # an application's implementation plan or risk-assessment report, kept as the record of the decision
    "pilot_documents", metadata,
    Column("id", String(24), primary_key=True),
    Column("application_id", String(24), ForeignKey("pilot_applications.id"), nullable=False, index=True),
    Column("kind", String(12), nullable=False),  # plan | risk_report
    Column("filename", String(200), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    _created(),
    info={"owner": "services.agency"},
)

pilot_agreements = Table(  # the agreement an approval signs: backstop liability and recourse, a one-year term
    "pilot_agreements", metadata,
    Column("id", String(24), primary_key=True),  # the agreement's number, named in every refusal
    Column("applicant", String(12), nullable=False),  # institution | region
    Column("institution_id", String(20), ForeignKey("institutions.id"), index=True),
    _region(),
    Column("application_id", String(24), ForeignKey("pilot_applications.id")),  # None: recorded when the platform was upgraded
    Column("renews", String(24)),  # the agreement this one continues
    Column("modes", String(40), nullable=False),
    Column("backstop_liability", Boolean, nullable=False),  # the institution answers to the fund for mobile-payment losses
    Column("recourse", String(300), nullable=False),  # its recourse against the payment institutions
    Column("starts_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),  # the last day it is in force
    Column("status", String(12), nullable=False),  # active | suspended | superseded
    Column("status_reason", String(300)),
    Column("signed_by", String(60), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.agency"},
)


# ---- monthly clearing (清算, 3203–3205A: services/clearing) ---------------------------------------------------

clearing_applications = Table(  # an institution's application to clear a month (3203), the agency's review and payment
    "clearing_applications", metadata,
    Column("id", String(32), primary_key=True),  # clr_appy_evt_id
    _region(),
    Column("institution_id", String(20), ForeignKey("institutions.id"), nullable=False, index=True),
    Column("clr_type", String(3), nullable=False),
    Column("clr_way", String(3), nullable=False),
    Column("setlym", String(6), nullable=False, index=True),
    # "one application per institution, month and clr_type at a time": set while not withdrawn, NULL once withdrawn
    Column("active_key", String(40), unique=True),
    # what the institution declared (fen; psntime a count)
    Column("psntime", Integer, nullable=False),
    Column("medfee_sumamt", BigInteger, nullable=False),
    Column("med_sumfee", BigInteger, nullable=False),
    Column("fund_appy_sum", BigInteger, nullable=False),
    Column("cash_payamt", BigInteger, nullable=False),
    Column("acct_pay", BigInteger, nullable=False),
    Column("begndate", Date, nullable=False),
    Column("enddate", Date, nullable=False),
    Column("late", Boolean, nullable=False),  # declared after the 10th of the next month
    Column("status", String(10), nullable=False),  # applied | accepted | cleared | withdrawn
    # the platform's figures frozen at approval (fen): what is paid
    Column("fund_paid", BigInteger),
    Column("account_paid", BigInteger),
    Column("deposit", BigInteger),
    Column("recoveries", BigInteger),
    Column("payable", BigInteger),
    Column("approved_by", String(80)),
    Column("approved_at", DateTime(timezone=True)),
    Column("cleared_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    CheckConstraint("psntime >= 0 AND medfee_sumamt >= 0 AND med_sumfee >= 0 AND fund_appy_sum >= 0 AND cash_payamt >= 0 AND acct_pay >= 0",
                    name="declared_amounts"),
    CheckConstraint("payable IS NULL OR (payable >= 0 AND deposit >= 0 AND recoveries >= 0)", name="payable_amounts"),
    info={"owner": "services.clearing"},
)

clearing_payees = Table(  # the bank account an institution is paid into at clearing, as the agency recorded it
    "clearing_payees", metadata,
    Column("institution_id", String(20), ForeignKey("institutions.id"), primary_key=True),
    _region(),
    Column("account_no", String(32), nullable=False),
    Column("account_name", String(200), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.clearing"},
)

clearing_payments = Table(  # a payment instruction to the agency's bank for an accepted application; a failed one is followed by a new one
    "clearing_payments", metadata,
    Column("id", String(40), primary_key=True),  # our instruction number: the bank books it once
    _region(),
    Column("application_id", String(32), ForeignKey("clearing_applications.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("bank_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("payee_account", String(32), nullable=False),
    Column("payee_name", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),  # sending | accepted | confirmed | failed
    Column("bank_ref", String(64)),
    Column("error_code", String(64)),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("application_id", "attempt"),
    CheckConstraint("amount > 0", name="positive"),
    info={"owner": "services.clearing"},
)

interregion_clearings = Table(  # a month's cross-region settlements netted between two regions (3260-style detail, 3261 / 3262)
    "interregion_clearings", metadata,
    Column("id", String(32), primary_key=True),
    Column("region_a", String(6), nullable=False),  # the lower code of the pair
    Column("region_b", String(6), nullable=False),
    Column("setlym", String(6), nullable=False),
    Column("active_key", String(20), unique=True),  # "{a}:{b}:{setlym}" while confirmed; NULL once rolled back
    # A's insured treated in B, net of cancels, refunds and liabilities in the month (fen; below zero when a month's
    # cancels of earlier settlements outweigh its settlements)
    Column("a_owes_b", BigInteger, nullable=False),
    Column("b_owes_a", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),  # the detail list's rows
    Column("status", String(12), nullable=False),  # confirmed | rolled_back
    Column("actor", String(80), nullable=False),
    Column("rolled_back_by", String(80)),
    Column("rolled_back_at", DateTime(timezone=True)),
    _created(),
    CheckConstraint("region_a < region_b", name="ordered_pair"),
    info={"owner": "services.clearing"},
)

# ---- benefits onto the card (一卡多用, seed 001: services/benefits; the card's account: services/people) --------------------

card_accounts = Table(  # the bank account behind a financial social-security card: the bank that holds it and its number
    "card_accounts", metadata,
    Column("card_id", String(24), ForeignKey("cards.id"), primary_key=True),
    _region(),
    Column("bank_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("account_no_enc", LargeBinary, nullable=False),  # encrypted: a bank account number is PII
    Column("account_last4", String(4), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    info={"owner": "services.people"},
)

benefit_batches = Table(  # another agency's subsidy (民政, 残联 …) for holders' card accounts: one batch as the agency sent it
    "benefit_batches", metadata,
    Column("id", String(24), primary_key=True),
    _region(),
    Column("agency", String(100), nullable=False),  # the paying agency, by name (民政局 …)
    Column("batch_no", String(40), nullable=False),  # the agency's own number: the same batch recorded twice is one batch
    Column("purpose", String(200), nullable=False),
    Column("digest", String(64), nullable=False),  # of the rows as recorded: a re-sent number with other rows is refused
    Column("rows", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),  # fen
    Column("status", String(10), nullable=False),  # recorded | submitted | done
    Column("recorded_by", String(80), nullable=False),
    Column("submitted_by", String(80)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("region", "agency", "batch_no"),
    CheckConstraint("total > 0", name="positive"),
    info={"owner": "services.benefits"},
)

benefit_credits = Table(  # one credit of a batch = one payment instruction to the card's bank (its number is the credit's id)
    "benefit_credits", metadata,
    Column("id", String(32), primary_key=True),  # "{batch}-{row}": the instruction number the bank books once
    _region(),
    Column("batch_id", String(24), ForeignKey("benefit_batches.id"), nullable=False),
    Column("row_no", Integer, nullable=False),  # the row in the agency's list, from 1
    Column("person_id", String(24), ForeignKey("persons.id"), nullable=False, index=True),
    Column("card_id", String(24), ForeignKey("cards.id"), nullable=False),
    Column("bank_id", String(40), ForeignKey("payment_institutions.id"), nullable=False),
    Column("account_no_enc", LargeBinary, nullable=False),  # the card's account as recorded with the batch (a resend is the same)
    Column("account_last4", String(4), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),  # pending | sending | accepted | credited | returned
    Column("bank_ref", String(64)),
    Column("return_code", String(64)),  # the bank's reason for a returned credit (ACCOUNT_CLOSED …)
    Column("settled_at", DateTime(timezone=True)),  # credited or returned, as the bank says
    Column("updated_at", DateTime(timezone=True), nullable=False),
    _created(),
    UniqueConstraint("batch_id", "row_no"),
    CheckConstraint("amount > 0", name="positive"),
    info={"owner": "services.benefits"},
)

Index("ix_benefit_credits_open", benefit_credits.c.status, benefit_credits.c.batch_id)
