"""Identity and cards through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.identity import active_card, authenticate, ecard, id_number_of, name_of
from tests.support.world import seed
from yibao.crypto.pii import mask_card_no
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.face.image import encode_grey
from yibao.services.books import audit
from yibao.services.people import cards, identity
from yibao.services.people import persons as people
from yibao.store.tables import card_events
from yibao.store.tables import cards as C
from yibao.store.tables import persons as P

PNG = encode_grey([[(x * y) % 256 for x in range(40)] for y in range(40)])
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9"


def run(db, fn, **kw):
    return db.run(lambda c: fn(c, now=db.clock(), **kw))


def test_physical_card_life_cycle_with_events_and_lookup(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    card = db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.employee.id, financial=True, actor="op", card_no="A12345678"))
    assert (card.status, card.production_stage, card.financial) == ("in_production", "accepted", True)
    assert db.run(lambda c: people.find_by_card_no(c, keyring, "A12345678"), write=False) is None  # not usable yet

    with pytest.raises(Conflict) as exc:
        run(db, cards.advance_production, card_id=card.id, stage="mailed", actor="op")
    assert exc.value.field == "stage" and "printing" in exc.value.message_en
    with pytest.raises(Conflict, match="not ready"):
        run(db, cards.issue, card_id=card.id, actor="op")
    for stage in ("printing", "mailed", "ready"):
        card = run(db, cards.advance_production, card_id=card.id, stage=stage, actor="op")
    with pytest.raises(InputError):
        run(db, cards.advance_production, card_id=card.id, stage="shipped", actor="op")
    card = run(db, cards.issue, card_id=card.id, actor="op")
    assert card.status == "issued"
    with pytest.raises(NotFound):  # only its holder activates a card
        run(db, cards.activate, card_id=card.id, holder_id=w.retiree.id, actor="x")
    card = run(db, cards.activate, card_id=card.id, holder_id=w.employee.id, actor="holder")
    assert card.status == "active"
    assert db.run(lambda c: people.find_by_card_no(c, keyring, "a12345678", kind="physical"), write=False).id == w.employee.id

    card = run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="holder")
    assert card.status == "lost"
    assert db.run(lambda c: people.find_by_card_no(c, keyring, "A12345678"), write=False) is None
    with pytest.raises(Conflict):
        run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="holder")
    card = run(db, cards.cancel, card_id=card.id, holder_id=w.employee.id, actor="holder")
    assert card.status == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        run(db, cards.cancel, card_id=card.id, holder_id=w.employee.id, actor="holder")

    trail = db.run(lambda c: [(e.event, e.from_status, e.to_status, e.actor) for e in cards.events(c, card.id)], write=False)
    assert trail == [("created", None, "in_production", "op"), ("stage_printing", "in_production", "in_production", "op"),
                     ("stage_mailed", "in_production", "in_production", "op"), ("stage_ready", "in_production", "in_production", "op"),
                     ("issued", "in_production", "issued", "op"), ("activated", "issued", "active", "holder"),
                     ("loss_reported", "active", "lost", "holder"), ("cancelled", "lost", "cancelled", "holder")]
    view = db.run(lambda c: cards.view(c, keyring, card), write=False)
    assert view["card_no"] == "A1***5678" and [p["done"] for p in view["progress"]] == [True] * 4
    assert view["progress"][0]["at"].endswith("+00:00")


def test_card_numbers_are_encrypted_and_a_second_live_card_is_refused(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    card = active_card(db, keyring, w.employee.id, card_no="B87654321")
    raw = db.run(lambda c: c.execute(select(C.c.card_no_enc, C.c.card_no_hash).where(C.c.id == card.id)).one(), write=False)
    assert b"B87654321" not in bytes(raw.card_no_enc) and "B87654321" not in raw.card_no_hash
    with pytest.raises(Conflict) as exc:
        db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.employee.id, financial=True, actor="op"))
    assert exc.value.code == "card_exists"
    with pytest.raises(Conflict) as exc:
        db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.retiree.id, financial=True, actor="op", card_no="B87654321"))
    assert exc.value.field == "card_no"
    with pytest.raises(InputError):
        db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.retiree.id, financial=True, actor="op", card_no="ab-1"))
    with pytest.raises(NotFound):
        db.run(lambda c: cards.create_physical(c, keyring, now, person_id="nobody", financial=True, actor="op"))
    # after a loss a replacement can be made; generated numbers are unique and region-prefixed
    run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="h")
    again = db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.employee.id, financial=False, actor="op"))
    number = keyring.decrypt(again.card_no_enc, "card_no")
    assert number.startswith("440300") and len(number) == 12  # masked like the demo's cards: 44******1234 beside D4******0011
    assert mask_card_no(number)[2:8] == mask_card_no("D44030000011")[2:8] == "******"


def test_a_lost_card_is_replaced_once_and_the_operator_finds_its_holder(db, keyring):
    """Replacement after loss (补卡): a new card in production, financial as the old; the lost card stays lost and is
    replaced once; an active card only when its loss is reported at the counter; the look-up by ID number is audited."""
    w = seed(db, keyring)
    card = active_card(db, keyring, w.employee.id, card_no="C11223344")
    with pytest.raises(Conflict) as exc:  # in use: not replaced without the loss being reported
        run(db, cards.replace, keyring=keyring, card_id=card.id, actor="op")
    assert (exc.value.code, exc.value.field) == ("not_lost", "card_id")
    run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="h")
    new = run(db, cards.replace, keyring=keyring, card_id=card.id, actor="op")
    assert (new.status, new.production_stage, new.financial, new.person_id) == ("in_production", "accepted", card.financial, w.employee.id)
    assert db.run(lambda c: cards.get(c, card.id), write=False).status == "lost"
    with pytest.raises(Conflict) as exc:
        run(db, cards.replace, keyring=keyring, card_id=card.id, actor="op")
    assert exc.value.code == "already_replaced"
    assert [e.event for e in db.run(lambda c: cards.events(c, card.id), write=False)][-1] == "replaced"

    other = active_card(db, keyring, w.retiree.id, card_no="C55667788")
    replaced = run(db, cards.replace, keyring=keyring, card_id=other.id, actor="op", report_loss=True)  # reported at the counter
    assert replaced.status == "in_production" and db.run(lambda c: cards.get(c, other.id), write=False).status == "lost"
    with pytest.raises(NotFound):
        run(db, cards.replace, keyring=keyring, card_id="CDnone", actor="op")

    assert run(db, cards.find_holder, keyring=keyring, query=w.retiree.id, actor="op").id == w.retiree.id
    by_id = run(db, cards.find_holder, keyring=keyring, query=id_number_of(2).lower(), actor="op")
    assert by_id.id == w.retiree.id
    assert db.run(lambda c: audit.entries(c, "440300", 5), write=False)[0].action == "pii.operator_lookup"
    with pytest.raises(NotFound) as exc:
        run(db, cards.find_holder, keyring=keyring, query="440300999999999999", actor="op")
    assert exc.value.field == "query"


def test_the_holder_reports_a_lost_card_found_or_replaces_it(db, keyring):
    """解挂: a lost card active again (its holder's only, not once replaced, not beside another live card); 补卡 by the
    holder: the counter's replacement of their own lost physical card, once."""
    w = seed(db, keyring)
    card = active_card(db, keyring, w.employee.id, card_no="D11223344")
    with pytest.raises(Conflict) as exc:  # not lost
        run(db, cards.report_found, card_id=card.id, holder_id=w.employee.id, actor="h")
    assert (exc.value.code, exc.value.field) == ("not_lost", "card_id")
    run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="h")
    with pytest.raises(NotFound):  # someone else's card
        run(db, cards.report_found, card_id=card.id, holder_id=w.retiree.id, actor="x")
    found = run(db, cards.report_found, card_id=card.id, holder_id=w.employee.id, actor="h")
    assert found.status == "active"
    assert db.run(lambda c: people.find_by_card_no(c, keyring, "D11223344", kind="physical"), write=False).id == w.employee.id
    assert [e.event for e in db.run(lambda c: cards.events(c, card.id), write=False)][-2:] == ["loss_reported", "found"]

    run(db, cards.report_loss, card_id=card.id, holder_id=w.employee.id, actor="h")
    with pytest.raises(NotFound):
        run(db, cards.replace_own, keyring=keyring, card_id=card.id, holder_id=w.retiree.id, actor="x")
    new = run(db, cards.replace_own, keyring=keyring, card_id=card.id, holder_id=w.employee.id, actor="h")
    assert (new.status, new.production_stage, new.financial) == ("in_production", "accepted", card.financial)
    assert db.run(lambda c: cards.view(c, keyring, cards.get(c, card.id)), write=False)["replaced"] is True
    for action, kw in ((cards.report_found, {}), (cards.replace_own, {"keyring": keyring})):  # replaced: neither again
        with pytest.raises(Conflict) as exc:
            run(db, action, card_id=card.id, holder_id=w.employee.id, actor="h", **kw)
        assert exc.value.code == "already_replaced"

    other = active_card(db, keyring, w.retiree.id, card_no="D55667788")
    run(db, cards.report_loss, card_id=other.id, holder_id=w.retiree.id, actor="h")
    db.run(lambda c: cards.create_physical(c, keyring, db.clock(), person_id=w.retiree.id, financial=True, actor="op"))
    with pytest.raises(Conflict) as exc:  # a new card is already being made: the old one is not revived beside it
        run(db, cards.report_found, card_id=other.id, holder_id=w.retiree.id, actor="h")
    assert exc.value.code == "card_exists"


def test_cancel_from_anywhere_even_in_production(db, keyring):
    w = seed(db, keyring)
    card = db.run(lambda c: cards.create_physical(c, keyring, db.clock(), person_id=w.resident.id, financial=False, actor="op"))
    assert run(db, cards.cancel, card_id=card.id, holder_id=w.resident.id, actor="h").status == "cancelled"


def test_photo_upload_checks_type_size_and_stage_and_is_stored_encrypted(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    card = db.run(lambda c: cards.create_physical(c, keyring, now, person_id=w.employee.id, financial=True, actor="op"))

    def upload(data, holder=w.employee.id):
        return db.run(lambda c: cards.upload_photo(c, keyring, now, card_id=card.id, holder_id=holder, data=data, actor="h"))

    for bad, code in [(b"GIF89a" + bytes(100), "photo_type"), (b"\x89PNG\r\n\x1a\n", "photo_type"), (PNG[:8] + bytes(300), "photo_type"),
                      (b"\x89PNG\r\n\x1a\n" + bytes(201 * 1024), "photo_too_large"), (JPEG[:-2], "photo_type")]:
        with pytest.raises(InputError) as exc:
            upload(bad)
        assert (exc.value.field, exc.value.code) == ("photo", code)
    with pytest.raises(NotFound):
        upload(PNG, holder=w.retiree.id)
    assert upload(JPEG).has_photo
    assert upload(PNG).has_photo
    raw = db.run(lambda c: c.execute(select(C.c.photo, C.c.photo_type).where(C.c.id == card.id)).one(), write=False)
    assert raw.photo_type == "image/png" and b"PNG" not in bytes(raw.photo)
    data, kind = db.run(lambda c: cards.read_photo(c, keyring, now, card_id=card.id, holder_id=w.employee.id, actor="h"))
    assert (data, kind) == (PNG, "image/png")
    assert db.run(lambda c: audit.entries(c, "440300", 1)[0].action, write=False) == "pii.card_photo"
    run(db, cards.advance_production, card_id=card.id, stage="printing", actor="op")
    with pytest.raises(Conflict, match="printing"):
        upload(PNG)
    events = db.run(lambda c: c.execute(select(card_events.c.event).where(card_events.c.card_id == card.id)).scalars().all(), write=False)
    assert events.count("photo_uploaded") == 2


def test_real_name_must_match_the_enrolment_record(db, keyring):
    w = seed(db, keyring)
    now = db.clock()

    def real_name(name, number):
        return db.run(lambda c: identity.real_name(c, keyring, now, person_id=w.employee.id, name=name, id_number=number, actor="h"))

    with pytest.raises(Forbidden) as exc:
        real_name(name_of(1), id_number_of(2))
    assert (exc.value.field, exc.value.code) == ("id_number", "real_name_mismatch")
    with pytest.raises(Forbidden) as exc:
        real_name("李四", id_number_of(1))
    assert exc.value.field == "name"
    with pytest.raises(InputError) as exc:
        real_name(name_of(1), id_number_of(1)[:-1] + ("0" if id_number_of(1)[-1] != "0" else "1"))
    assert exc.value.code == "id_number_checksum"
    assert db.run(lambda c: identity.status(c, w.employee.id), write=False)["real_name_verified_at"] is None
    done = real_name(f" {name_of(1)} ", id_number_of(1).lower())
    assert done["real_name_verified_at"] == now.isoformat()


def test_real_person_needs_real_name_an_enrolled_face_liveness_and_a_match(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    pid = w.employee.id

    def template():
        return db.run(lambda c: identity.face_template(c, keyring, now, person_id=pid, actor="h"))

    def record(tpl="tpl_1", match=True, liveness="pass"):
        return db.run(lambda c: identity.record_real_person(c, keyring, now, person_id=pid, template_id=tpl, match=match,
                                                            liveness=liveness, similarity=0.9, actor="h"))

    with pytest.raises(Forbidden) as exc:
        template()
    assert exc.value.field == "real_name"
    db.run(lambda c: identity.real_name(c, keyring, now, person_id=pid, name=name_of(1), id_number=id_number_of(1), actor="h"))
    with pytest.raises(Conflict) as exc:
        template()
    assert exc.value.code == "face_not_enrolled"
    db.run(lambda c: identity.enrol_face(c, keyring, now, person_id=pid, template_id="tpl_1", actor="op"))
    assert template() == "tpl_1"
    raw = db.run(lambda c: c.execute(select(P.c.face_template_enc).where(P.c.id == pid)).scalar_one(), write=False)
    assert b"tpl_1" not in bytes(raw)
    with pytest.raises(Forbidden) as exc:
        record(liveness="fail")
    assert exc.value.field == "liveness"
    with pytest.raises(Forbidden) as exc:
        record(match=False)
    assert (exc.value.field, exc.value.code) == ("capture", "face_mismatch")
    with pytest.raises(Conflict) as exc:
        record(tpl="tpl_old")
    assert exc.value.code == "face_template_changed"
    assert record()["real_person_verified_at"] == now.isoformat()
    actions = db.run(lambda c: [e.action for e in audit.entries(c, "440300", 5)], write=False)
    assert actions[:4] == ["identity.real_person", "pii.face_template", "identity.face_enrol", "identity.real_name"]


def test_ecard_only_after_both_authentications_and_one_at_a_time(db, keyring):
    w = seed(db, keyring)
    now = db.clock()
    pid = w.employee.id

    def issue():
        return db.run(lambda c: cards.issue_ecard(c, keyring, now, person_id=pid, actor="h"))

    with pytest.raises(Forbidden) as exc:
        issue()
    assert exc.value.field == "real_name"
    db.run(lambda c: identity.real_name(c, keyring, now, person_id=pid, name=name_of(1), id_number=id_number_of(1), actor="h"))
    with pytest.raises(Forbidden) as exc:
        issue()
    assert exc.value.field == "real_person"
    authenticate(db, keyring, pid, name_of(1), id_number_of(1))
    card = issue()
    assert (card.kind, card.status, card.financial) == ("ecard", "active", False)
    number = keyring.decrypt(card.card_no_enc, "card_no")
    assert number.startswith("E440300")
    assert db.run(lambda c: people.find_by_card_no(c, keyring, number, kind="ecard"), write=False).id == pid
    with pytest.raises(Conflict) as exc:
        issue()
    assert exc.value.code == "ecard_exists"
    run(db, cards.cancel, card_id=card.id, holder_id=pid, actor="h")
    assert db.run(lambda c: people.find_by_card_no(c, keyring, number), write=False) is None
    assert issue().id != card.id
    with pytest.raises(Conflict, match="physical"):  # an e-card has no photo
        db.run(lambda c: cards.upload_photo(c, keyring, now, card_id=card.id, holder_id=pid, data=PNG, actor="h"))


def test_the_holder_sees_all_their_cards_and_the_audit_chain_holds(db, keyring):
    w = seed(db, keyring)
    active_card(db, keyring, w.retiree.id)
    ecard(db, keyring, w.retiree.id, name_of(2), id_number_of(2))
    listed = db.run(lambda c: [cards.view(c, keyring, k) for k in cards.for_person(c, w.retiree.id)], write=False)
    assert [(v["kind"], v["status"]) for v in listed] == [("physical", "active"), ("ecard", "active")]
    assert listed[1]["progress"] == [] and listed[1]["events"][0]["event"] == "ecard_issued"
    assert all(r.ok for r in db.run(audit.verify, write=False))
