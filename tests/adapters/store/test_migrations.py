"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from yibao.store import migrate
from yibao.store.tables import metadata


def test_upgrade_from_empty_matches_the_tables(db):
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    assert migrate.current(db) == migrate.head()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"tables and migrations differ; add a revision (yibao.store.migrate.revision): {diff}"
    migrate.upgrade(db)  # a second run is a no-op
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_an_upgraded_database_keeps_its_plain_chain_keys_what_follows_and_never_overdraws_contributions(db, keyring):
    """Migration 0010 on books written before it: the old SHA-256 entries still verify and stay covered (the first keyed
    entry MACs the last plain hash), the contributions account credited past what was collected gets that deficit
    recorded as collected and becomes no-overdraft, and the older transfers are not reported as unvouched. Then 0016: the
    chain becomes lane 0 of the region's trail (15 empty lanes beside it) and an account that derives its balance has its
    row zeroed, its balance unchanged (the sums of its transfers)."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    import sqlalchemy as sa
    from sqlalchemy import insert, select

    from tests.support import audit as attack
    from yibao.services.books import audit, ledger
    from yibao.store.tables import audit_heads, ledger_accounts, transfers

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db, "0007")
    # The trail's tables as they were before lanes (0016): the current metadata has a lane column.
    audit_log_0007 = sa.table("audit_log", *(sa.column(n) for n in ("region", "seq", "at", "actor", "action", "subject", "detail",
                                                                    "prev_hash", "hash")))
    audit_heads_0007 = sa.table("audit_heads", sa.column("region"), sa.column("seq"), sa.column("hash"))
    at = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
    with db.engine.begin() as conn:
        for account, kind, no_overdraft, debits, credits in (("fund:440300:contributions", "contributions", False, 1000_00, 0),
                                                             ("person:P1", "personal_account", True, 0, 1000_00)):
            conn.execute(insert(ledger_accounts).values(id=account, region="440300", kind=kind, owner_id=None, debits_pending=0,
                                                        debits_posted=debits, credits_pending=0, credits_posted=credits,
                                                        debits_must_not_exceed_credits=no_overdraft, created_at=at))
        conn.execute(insert(transfers).values(client_id="open:P1", region="440300", debit_account_id="fund:440300:contributions",
                                              credit_account_id="person:P1", amount=1000_00, kind="single", state="posted",
                                              code="contribution", ref="P1", created_at=at))
        prev = attack.GENESIS
        for seq, action in ((1, "person.enrol"), (2, "account.credit")):
            row = SimpleNamespace(region="440300", seq=seq, at=at, actor="operator:a", action=action, subject="P1", detail="{}")
            digest = attack.sha256_digest(prev, row)
            conn.execute(insert(audit_log_0007).values(region="440300", seq=seq, at=at, actor="operator:a", action=action, subject="P1",
                                                  detail="{}", prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(insert(audit_heads_0007).values(region="440300", seq=2, hash=prev))

    migrate.upgrade(db)
    audit.use_key(db, keyring)
    heads = db.run(lambda c: c.execute(select(audit_heads).order_by(audit_heads.c.lane)).all(), write=False)
    head = heads[0]
    assert (head.lane, head.seq, head.keyed_from, head.legacy_transfers_upto) == (0, 2, 3, 2)  # transfer 2: the deficit collected below
    assert [(h.lane, h.seq, h.legacy_transfers_upto) for h in heads[1:]] == [(lane, 0, 2) for lane in range(1, audit.LANES)]
    source = db.run(lambda c: c.execute(select(ledger_accounts).where(ledger_accounts.c.id == "external:440300:contributions")).one(),
                    write=False)
    assert (source.debits_posted, source.credits_posted) == (0, 0)  # 0016: derived from its transfers from now on
    assert db.run(lambda c: ledger.balance(c, "external:440300:contributions"), write=False) == -1000_00
    contributions = db.run(lambda c: c.execute(select(ledger_accounts).where(ledger_accounts.c.id == "fund:440300:contributions")).one(),
                           write=False)
    assert contributions.debits_must_not_exceed_credits and contributions.credits_posted == contributions.debits_posted == 1000_00
    assert db.run(lambda c: ledger.get_transfer(c, "migration:0010:collection:440300"), write=False).amount == 1000_00
    assert db.run(lambda c: ledger.totals(c), write=False).balanced
    assert all(r.ok for r in db.run(audit.verify, write=False))

    db.run(lambda c: audit.append(c, region="440300", actor="operator:a", action="pii.lookup", subject="P1", detail={}, now=at))
    assert all(r.ok for r in db.run(audit.verify, write=False))
    third = attack.entries(db, "440300")[2]
    assert third.hash != attack.sha256_digest(third.prev_hash, third)  # keyed
    attack.edit_and_recompute(db, "440300", 1, '{"edited":1}')  # the plain part and what follows, recomputed without the key
    report = db.run(audit.verify, write=False)[0]
    assert not report.ok and report.problem.endswith("entry 3: content does not match its MAC (altered)")

    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def _migrate_to(db, revision: str, up: bool) -> None:  # noqa: ANN001
    """Alembic up or down to ``revision`` on the test's database (as `yibao migrate` runs it)."""
    from alembic import command

    from yibao.store.migrate import _config

    cfg = _config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, revision)


def test_0016_undone_writes_the_derived_balances_back_and_redone_derives_them_again(db):
    """Down from 0016, an account that derived its balance gets its running balance written back from its transfers (and
    the lanes and indexes go as they came); up again, the row is zero and the balance the same. The test's own alembic
    run: `yibao db` has no downgrade command."""
    from sqlalchemy import insert, select

    from yibao.services.books import ledger
    from yibao.store.tables import ledger_accounts, transfers

    def to(revision: str, up: bool) -> None:
        _migrate_to(db, revision, up)

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    now = db.clock()
    db.run(lambda c: [ledger.ensure_account(c, a, "440300", k, now) for a, k in (("fund:440300:pool", "fund_pool"),
                                                                                   ("institution:H1:receivable", "institution_receivable"))])
    with db.engine.begin() as conn:
        conn.execute(insert(transfers).values(client_id="s:1", region="440300", debit_account_id="fund:440300:pool",
                                              credit_account_id="institution:H1:receivable", amount=123_45, kind="single",
                                              state="posted", code="settlement", ref="s", created_at=now))
    to("0015", up=False)
    with db.engine.connect() as conn:
        rows = {r.id: (r.debits_posted, r.credits_posted) for r in conn.execute(select(ledger_accounts.c.id, ledger_accounts.c.debits_posted,
                                                                                        ledger_accounts.c.credits_posted))}
    assert rows == {"fund:440300:pool": (123_45, 0), "institution:H1:receivable": (0, 123_45)}
    to("head", up=True)
    assert db.run(lambda c: (ledger.balance(c, "fund:440300:pool"), ledger.balance(c, "institution:H1:receivable")),
                  write=False) == (-123_45, 123_45)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0018_undone_drops_wxpay_identification_and_redone_marks_existing_wxpay_rows_public_key(db, keyring):
    """Down from 0018 the three wxpay columns go and the row stays; up again, a wxpay row configured before (the key by
    its serial) reads as certificate_mode public_key with no key id or plan, as the code built it before."""
    from sqlalchemy import inspect, select

    from tests.support.identity import admit
    from yibao.channels.crypto import generate_rsa_key, private_pem, public_pem
    from yibao.services.agency import connectors as channel_registry
    from yibao.store.tables import channel_configs

    def to(revision: str, up: bool) -> None:
        _migrate_to(db, revision, up)

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    admit(db, "wxpay-440300")
    db.run(lambda c: channel_registry.configure(
        c, keyring, db.clock(), pi_id="wxpay-440300", connector="wxpay", base_url="https://api.mch.weixin.qq.com", merchant_id="1900000109",
        app_id="wxd678efh567hg6787", private_key_pem=private_pem(generate_rsa_key()).decode(), shared_secret=b"k" * 32,
        institution_public_key_pem=public_pem(generate_rsa_key().public_key()).decode(), certificate_mode="both",
        platform_key_id="PUB_KEY_ID_0114", plan_id=12535, actor="test"))
    to("0017", up=False)
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("channel_configs")}
        assert not columns & {"platform_key_id", "certificate_mode", "plan_id"}
        assert conn.execute(text("SELECT connector FROM channel_configs")).scalar_one() == "wxpay"
    to("head", up=True)
    with db.engine.connect() as conn:
        row = conn.execute(select(channel_configs.c.certificate_mode, channel_configs.c.platform_key_id, channel_configs.c.plan_id)).one()
    assert tuple(row) == ("public_key", None, None)
    cfg = db.run(lambda c: channel_registry.require(c, "wxpay-440300"), write=False)
    assert not channel_registry.build(cfg, keyring).config.platform_certificates
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0019_undone_forgets_pending_agreements_and_keeps_signed_ones(db, keyring):
    """Down from 0019 a pending agreement (no institution number) is deleted — the code before knew none — and a signed
    one stays; up again, both kinds can be written."""
    from sqlalchemy import insert, select

    from tests.support.world import seed
    from yibao.store.tables import channel_agreements

    def to(revision: str, up: bool) -> None:
        _migrate_to(db, revision, up)

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    w = seed(db, keyring)
    from tests.support.identity import admit

    admit(db, "wxpay-440300")
    now = db.clock()
    with db.engine.begin() as conn:
        for person, no, agreement_no, status in ((w.employee.id, "AGSIGNED0001", "WXA1", "active"), (w.retiree.id, "AGPENDING001", None, "pending")):
            conn.execute(insert(channel_agreements).values(person_id=person, payment_institution_id="wxpay-440300", region="440300",
                                                           out_agreement_no=no, agreement_no=agreement_no, limit_fen=5_000_000, status=status,
                                                           signing_started_at=now, updated_at=now, created_at=now))
    to("0018", up=False)
    with db.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT out_agreement_no, agreement_no FROM channel_agreements"))] == [("AGSIGNED0001", "WXA1")]
    to("head", up=True)
    with db.engine.begin() as conn:
        conn.execute(insert(channel_agreements).values(person_id=w.retiree.id, payment_institution_id="wxpay-440300", region="440300",
                                                       out_agreement_no="AGPENDING001", agreement_no=None, limit_fen=5_000_000,
                                                       status="pending", signing_started_at=now, updated_at=now, created_at=now))
        assert conn.execute(select(channel_agreements.c.status).order_by(channel_agreements.c.out_agreement_no)).scalars().all() == \
            ["pending", "active"]
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0020_undone_drops_the_reconciliation_tables_and_redone_makes_them_again(db, keyring):
    """Down from 0020 the reconciliation tables go with their rows (nothing else refers to them); up again they are there,
    empty, and take a run and its difference."""
    from datetime import date

    from sqlalchemy import insert, inspect, select

    from tests.support.identity import admit
    from tests.support.world import seed
    from yibao.store.tables import reconciliation_differences, reconciliation_runs

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    seed(db, keyring)
    admit(db, "wxpay-440300")
    now = db.clock()
    counts = dict(statement_trades=0, statement_trade_fen=0, statement_refunds=0, statement_refund_fen=0, platform_legs=0, platform_fen=0,
                  matched=0, pooled=0, carried=0, differences=1, open_differences=1)

    def write() -> None:
        with db.engine.begin() as conn:
            conn.execute(insert(reconciliation_runs).values(id="RC1", region="440300", payment_institution_id="wxpay-440300",
                                                            day=date(2026, 11, 23), status="open", runs=1, finished_at=now, created_at=now,
                                                            **counts))
            conn.execute(insert(reconciliation_differences).values(
                id="RD1", region="440300", run_id="RC1", payment_institution_id="wxpay-440300", day=date(2026, 11, 23),
                cls="duplicate", kind="trade", key="PO1", out_trade_no="PO1", count=2, status="open", last_seen_at=now, created_at=now))

    write()
    _migrate_to(db, "0019", up=False)
    assert not {"reconciliation_runs", "reconciliation_differences", "reconciliation_pool", "reconciliation_offday"} & \
        set(inspect(db.engine).get_table_names())
    _migrate_to(db, "head", up=True)
    with db.engine.connect() as conn:
        assert conn.execute(select(reconciliation_runs.c.id)).all() == []
    write()
    with db.engine.begin() as conn:
        assert conn.execute(select(reconciliation_differences.c.status)).scalars().all() == ["open"]
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0024_gives_every_active_institution_an_agreement_so_payments_go_on(db, keyring):
    """Up to 0024 an institution active before it gets an agreement recorded by the upgrade (all four modes, a year),
    so an upgrade does not stop its mobile-mode payments; a suspended one gets none. Down, the tables go."""
    from datetime import datetime, timezone

    from sqlalchemy import insert, inspect, select

    from yibao.services.agency import pilots
    from yibao.store.tables import institutions, pilot_agreements

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    _migrate_to(db, "0023", up=False)  # the revision before 0024 (named: later revisions follow it)
    assert "pilot_agreements" not in inspect(db.engine).get_table_names()
    now = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    with db.engine.begin() as conn:
        for code, status in (("H44030001", "active"), ("H44030002", "suspended")):
            conn.execute(insert(institutions).values(id=code, region="440300", name="医院", kind="hospital", level="level2", status=status,
                                                     secret_hash="x", created_at=now))
    _migrate_to(db, "head", up=True)
    with db.engine.connect() as conn:
        rows = conn.execute(select(pilot_agreements)).all()
    assert [(r.institution_id, r.modes, r.status, r.signed_by) for r in rows] == [("H44030001", "onecode,face,mobile,credit", "active", "migration:0024")]
    assert (rows[0].expires_on - rows[0].starts_on).days in (364, 365)
    db.run(lambda c: pilots.require(c, datetime.now(timezone.utc), institution_id="H44030001", mode="face"))
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0021_undone_drops_what_it_added_and_redone_leaves_existing_rows_as_the_code_before_saw_them(db, keyring):
    """Down from 0021 the order's acceptance, the agreement's generation and the wxpay deduction notice go (the rows stay);
    up again, the order reads as never accepted — the short grace it had before —, the agreement as the first generation,
    and a wxpay configuration sends the notice (as the code always did)."""
    from sqlalchemy import inspect, select

    from tests.support.world import seed
    from yibao.services.care import visits
    from yibao.services.payments import orders as payments
    from yibao.store.tables import channel_agreements, payment_orders

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    w = seed(db, keyring)
    now = db.clock()

    def order(c):  # noqa: ANN001, ANN202
        visit = visits.open_visit_for(c, now, institution=w.hospital, person_id=w.employee.id, kind="outpatient").visit
        return payments.insert_order(c, now, institution=w.hospital, request_key="K", request_hash="h", method="onecode", visit=visit,
                                     person_id=w.employee.id, payer_id=w.employee.id, paycode_id=None, terminal_id=None, actor="test")
    made = db.run(order)
    from tests.support.identity import admit
    from yibao.channels.crypto import generate_rsa_key, private_pem, public_pem
    from yibao.services.agency import connectors as channel_registry

    admit(db, "wxpay-440300")
    db.run(lambda c: channel_registry.configure(
        c, keyring, db.clock(), pi_id="wxpay-440300", connector="wxpay", base_url="https://api.mch.weixin.qq.com", merchant_id="1900000109",
        app_id="wxd678efh567hg6787", private_key_pem=private_pem(generate_rsa_key()).decode(), shared_secret=b"k" * 32,
        institution_public_key_pem=public_pem(generate_rsa_key().public_key()).decode(), deduct_notice=False, actor="test"))
    with db.engine.begin() as conn:
        conn.execute(payment_orders.update().values(cash_accepted_at=now))
        conn.execute(channel_agreements.insert().values(person_id=w.employee.id, payment_institution_id="wxpay-440300", region="440300",
                                                        out_agreement_no="AGSECOND0001", generation=2, agreement_no="WXA2", limit_fen=5_000_000,
                                                        status="active", signing_started_at=now, updated_at=now, created_at=now))
    _migrate_to(db, "0020", up=False)
    with db.engine.connect() as conn:
        assert "cash_accepted_at" not in {c["name"] for c in inspect(conn).get_columns("payment_orders")}
        assert "generation" not in {c["name"] for c in inspect(conn).get_columns("channel_agreements")}
        assert "deduct_notice" not in {c["name"] for c in inspect(conn).get_columns("channel_configs")}
        assert conn.execute(text("SELECT id FROM payment_orders")).scalar_one() == made.id
        assert conn.execute(text("SELECT out_agreement_no FROM channel_agreements")).scalar_one() == "AGSECOND0001"
    _migrate_to(db, "head", up=True)
    with db.engine.connect() as conn:
        assert conn.execute(select(payment_orders.c.cash_accepted_at)).scalar_one() is None
        assert conn.execute(select(channel_agreements.c.generation)).scalar_one() == 1
    assert db.run(lambda c: channel_registry.require(c, "wxpay-440300"), write=False).deduct_notice is True
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0023_undone_drops_the_clearing_tables_and_redone_takes_an_application_again(db, keyring):
    """Down from 0023 the clearing tables go (the ledger's transfers stay); up again, an application is written again."""
    from datetime import date

    from sqlalchemy import insert, inspect, select

    from tests.support.world import seed
    from yibao.store.tables import clearing_applications

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    w = seed(db, keyring)
    now = db.clock()
    row = dict(id="CA1", region="440300", institution_id=w.hospital.id, clr_type="11", clr_way="1", setlym="202611",
               active_key=f"{w.hospital.id}:202611:11", psntime=1, medfee_sumamt=100, med_sumfee=100, fund_appy_sum=90, cash_payamt=10,
               acct_pay=0, begndate=date(2026, 11, 1), enddate=date(2026, 11, 30), late=False, status="applied", updated_at=now, created_at=now)
    with db.engine.begin() as conn:
        conn.execute(insert(clearing_applications).values(**row))
    _migrate_to(db, "0021", up=False)
    with db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert not tables & {"clearing_applications", "clearing_payees", "clearing_payments", "interregion_clearings"} and "transfers" in tables
    _migrate_to(db, "head", up=True)
    with db.engine.begin() as conn:
        conn.execute(insert(clearing_applications).values(**row))
        assert conn.execute(select(clearing_applications.c.status)).scalars().all() == ["applied"]
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0027_undone_drops_the_benefit_tables_and_redone_takes_a_card_account_again(db, keyring):
    """Down from 0027 the card accounts and benefit batches go (cards and persons stay); up again, a card's account is recorded
    and a batch written again."""
    from sqlalchemy import insert, inspect, select

    from tests.support.identity import active_card, admit
    from tests.support.world import seed
    from yibao.store.tables import benefit_batches, card_accounts

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    w = seed(db, keyring)
    admit(db, "bank-440300", kind="bank")
    card = active_card(db, keyring, w.employee.id)
    now = db.clock()

    def write() -> None:
        with db.engine.begin() as conn:
            conn.execute(insert(card_accounts).values(card_id=card.id, region="440300", bank_id="bank-440300", account_no_enc=b"x",
                                                      account_last4="1234", actor="test", updated_at=now, created_at=now))
            conn.execute(insert(benefit_batches).values(id="BB1", region="440300", agency="民政局", batch_no="1", purpose="津贴", digest="d",
                                                        rows=1, total=100, status="recorded", recorded_by="test", updated_at=now, created_at=now))

    write()
    _migrate_to(db, "0024", up=False)
    with db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert not tables & {"card_accounts", "benefit_batches", "benefit_credits"} and {"cards", "persons"} <= tables
    _migrate_to(db, "head", up=True)
    write()
    with db.engine.begin() as conn:
        assert conn.execute(select(card_accounts.c.account_last4)).scalars().all() == ["1234"]
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it


def test_0030_splits_the_shared_eligible_cost_accumulator_by_the_settlements_visit_class(db, keyring):
    """Down from 0030 (the shape every settlement before it had: one pool_eligible_used), then up: each person-year's
    value is split into the inpatient and outpatient accumulators by its standing settlements' deltas and their visits'
    kind (a reversed stay's delta no longer counts), inpatient_pool_paid = pool_fund_paid − outpatient_pool_paid, and
    every stored delta is in the new shape again — so the rows and deltas come back exactly, and a cancel after the
    migration gives back exactly what the visit added."""
    import json

    from sqlalchemy import select

    from tests.support.settlement import acc, open_with_lines, settle
    from tests.support.world import seed
    from yibao.services.care import settlement, visits
    from yibao.store.tables import settlements

    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade(db)
    w = seed(db, keyring)
    out = settle(db, w.hospital, open_with_lines(db, w.hospital, w.employee.id).id, "OUT-1")
    stay = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "阑尾切除术", "unit_price": "5000.00", "quantity": "1"}]
    for msgid in ("IP-1", "IP-2"):
        v = open_with_lines(db, w.hospital, w.employee.id, kind="inpatient", lines=stay)
        db.run(lambda c, v=v: visits.discharge(c, db.clock(), institution=w.hospital, visit_id=v.id))
        settle(db, w.hospital, v.id, msgid)
    db.run(lambda c: settlement.reverse(c, db.clock(), institution=w.hospital, omsgid="IP-2", oinfno="2207", actor="test"))
    before = acc(db, w.employee.id)
    # Shenzhen employee: the outpatient visit covered 318.00 − 300.00 deductible = 18.00; the standing stay
    # 5000.00 − 600.00 = 4400.00 (paid 90 %: 3960.00), the reversed one nothing any more.
    assert (before.outpatient_eligible_used, before.inpatient_eligible_used) == (1800, 440000)
    assert before.inpatient_pool_paid == 396000 and before.pool_fund_paid == 396000 + before.outpatient_pool_paid
    # the year's in-scope cost per class (yearly bands, 0030 too): 318.00 outpatient, 5000.00 of the standing stay
    assert (before.outpatient_in_scope, before.inpatient_in_scope) == (31800, 500000)

    def deltas() -> dict[str, dict[str, int]]:
        with db.engine.connect() as conn:
            return {r.id: json.loads(r.accumulator_delta) for r in conn.execute(select(settlements.c.id, settlements.c.accumulator_delta))}

    new_deltas = deltas()
    _migrate_to(db, "0029", up=False)
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT pool_eligible_used FROM accumulators WHERE person_id = :p"), {"p": w.employee.id}).one()
    assert row.pool_eligible_used == 441800
    old_deltas = deltas()
    assert all("pool_eligible_used" in d and "inpatient_eligible_used" not in d for d in old_deltas.values())
    _migrate_to(db, "head", up=True)
    assert acc(db, w.employee.id) == before
    assert deltas() == new_deltas
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=w.hospital, setl_id=out["setl_id"], actor="test"))
    after = acc(db, w.employee.id)
    assert (after.outpatient_eligible_used, after.inpatient_eligible_used, after.outpatient_pool_paid) == (0, 440000, 0)
    assert (after.outpatient_in_scope, after.inpatient_in_scope) == (0, 500000)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    db.drop_all()
    db.create_all()  # leave the fixture's database as other tests expect it
