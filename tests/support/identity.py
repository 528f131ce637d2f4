"""Set-up for identity, card, binding and family tests, on top of tests.support.world.seed()."""

from __future__ import annotations

import functools
from datetime import date

from tests.conftest import TEST_KEY
from yibao.crypto.pii import Keyring
from yibao.domain.identity import make_id_number
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis
from yibao.services.people import bindings, cards, families, identity
from yibao.services.people import persons as people
from yibao.store.db import Database


def id_number_of(n: int, region: str = "440300") -> str:
    """The ID number seed() gives person n (1 employee, 2 retiree, 3 resident)."""
    return make_id_number(region[:4] + "01", date(1960 + n * 7, 3, 1 + n), n)


def name_of(n: int) -> str:
    return f"测试{n}"


def enrol_child(db: Database, keyring: Keyring, guardian_id: str, *, n: int = 9, name: str = "小明", region: str = "440300",
                phone: str | None = None) -> people.Person:
    now = db.clock()
    return db.run(lambda c: people.enrol(c, keyring, now, region=region, id_number=make_id_number(region[:4] + "01", date(2018, 6, n), n),
                                         name=name, insurance_type="child", employment_status="none", guardian_id=guardian_id, phone=phone))


def enrol_adult(db: Database, keyring: Keyring, *, n: int, name: str, region: str = "440300", phone: str | None = None) -> people.Person:
    now = db.clock()
    return db.run(lambda c: people.enrol(c, keyring, now, region=region, id_number=make_id_number(region[:4] + "01", date(1980, 1, n), n),
                                         name=name, insurance_type="employee", tier=1 if region == "440300" else None, phone=phone))


def authenticate(db: Database, keyring: Keyring, person_id: str, name: str, id_number: str) -> None:
    """Real name, then a real-person record as the verifier would have answered it (no HTTP here)."""
    now = db.clock()
    db.run(lambda c: identity.real_name(c, keyring, now, person_id=person_id, name=name, id_number=id_number, actor="test"))
    db.run(lambda c: identity.enrol_face(c, keyring, now, person_id=person_id, template_id=f"tpl_{person_id}", actor="test"))
    db.run(lambda c: identity.record_real_person(c, keyring, now, person_id=person_id, template_id=f"tpl_{person_id}", match=True,
                                                 liveness="pass", similarity=0.97, actor="test"))


def ecard(db: Database, keyring: Keyring, person_id: str, name: str, id_number: str) -> cards.Card:
    authenticate(db, keyring, person_id, name, id_number)
    return db.run(lambda c: cards.issue_ecard(c, keyring, db.clock(), person_id=person_id, actor="test"))


def admit(db: Database, pi_id: str, region: str = "440300", kind: str = "wallet", *, connected: bool = True) -> pis.PaymentInstitution:
    """An admitted institution recorded directly (no connector check); ``connected``: with a connector configured (an
    Alipay-shaped one at an address nothing answers), as every admitted institution has — what bindings require."""
    pi = db.run(lambda c: pis.admit(c, db.clock(), pi_id=pi_id, region=region, name=f"{pi_id} 支付", kind=kind,
                                    admission_ref=f"深医保准〔2026〕{pi_id}", actor="test"))
    if connected:
        key = _test_key_pem()
        db.run(lambda c: channel_registry.configure(c, Keyring(TEST_KEY), db.clock(), pi_id=pi_id, connector="alipay",
                                                    base_url="http://127.0.0.1:9", merchant_id=f"test-{pi_id}"[:64], private_key_pem=key[0],
                                                    institution_public_key_pem=key[1], actor="test"))
    return pi


@functools.cache
def _test_key_pem() -> tuple[str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from yibao.channels.crypto import private_pem, public_pem

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private_pem(key).decode(), public_pem(key.public_key()).decode()


def active_card(db: Database, keyring: Keyring, person_id: str, *, financial: bool = True, card_no: str | None = None) -> cards.Card:
    """A physical card through production, issue and activation."""
    now = db.clock()
    card = db.run(lambda c: cards.create_physical(c, keyring, now, person_id=person_id, financial=financial, actor="test", card_no=card_no))
    for stage in ("printing", "mailed", "ready"):
        db.run(lambda c, s=stage: cards.advance_production(c, now, card_id=card.id, stage=s, actor="test"))
    db.run(lambda c: cards.issue(c, now, card_id=card.id, actor="test"))
    return db.run(lambda c: cards.activate(c, now, card_id=card.id, holder_id=person_id, actor="test"))


def bind(db: Database, person_id: str, pi_id: str, **kw) -> list[dict]:
    return db.run(lambda c: bindings.bind(c, db.clock(), holder_id=person_id, pi_id=pi_id, actor="test", **kw))


def guardian_ready(db: Database, keyring: Keyring, guardian: people.Person, n: int, child_card_no: str = "CHILD0001"):
    """A Shenzhen family where conditions 1, 2 (e-card bound) and 4 hold: the child card can be linked."""
    child = enrol_child(db, keyring, guardian.id)
    active_card(db, keyring, child.id, card_no=child_card_no)
    ecard(db, keyring, guardian.id, name_of(n), id_number_of(n))
    admit(db, "wechat")
    bind(db, guardian.id, "wechat")
    return child


def link_child(db: Database, keyring: Keyring, guardian_id: str, card_no: str = "CHILD0001", child_name: str = "小明") -> dict:
    return db.run(lambda c: families.link_child_card(c, keyring, db.clock(), guardian_id=guardian_id, card_no=card_no,
                                                     child_name=child_name, actor="test"))
