"""Admission tests the institution's connector (agency/admission.py): a signed query for an order nobody placed,
against each SANDBOX institution on loopback; none configured, or a wrong key, is refused in words."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.payments import configure_channel
from yibao.channels.crypto import public_pem
from yibao.domain.errors import Conflict
from yibao.services import Context
from yibao.services.agency import admission
from yibao.services.agency import payment_institutions as pis


@pytest.mark.parametrize("name", ["wxpay", "alipay", "unionpay", "bank"])
def test_each_connector_answers_the_probe_signed_and_the_institution_is_admitted(db, keyring, channel_world, request, name):
    live = request.getfixturevalue(name)
    pi_id = f"{name}-440300"
    ctx = Context.for_database(db, keyring)
    details = dict(pi_id=pi_id, region="440300", name=f"{name} 支付", kind="bank" if name == "bank" else "wallet",
                   admission_ref="深医保准〔2026〕1", actor="op")
    with pytest.raises(Conflict) as exc:
        asyncio.run(admission.admit(ctx, **details))
    assert (exc.value.field, exc.value.code) == ("connector", "connector_missing")
    assert db.run(lambda c: pis.get(c, pi_id), write=False).status == "registered"
    configure_channel(db, keyring, pi_id, live.channel)
    admitted = asyncio.run(admission.admit(ctx, **details))
    assert admitted.status == "admitted"


def test_a_connector_whose_answers_do_not_verify_is_refused(db, keyring, channel_world, alipay):
    from cryptography.hazmat.primitives.asymmetric import rsa

    ctx = Context.for_database(db, keyring)
    db.run(lambda c: pis.register(c, db.clock(), pi_id="alipay-440300", region="440300", name="支付宝", kind="wallet", actor="op"))
    stranger = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()).decode()
    configure_channel(db, keyring, "alipay-440300", alipay.channel, institution_public_key_pem=stranger)  # not Alipay's key
    with pytest.raises(Conflict) as exc:
        asyncio.run(admission.admit(ctx, pi_id="alipay-440300", region="440300", name="支付宝", kind="wallet", admission_ref="r", actor="op"))
    assert exc.value.code == "connector_check_failed" and "签名验证失败" in exc.value.message_zh
    assert db.run(lambda c: pis.get(c, "alipay-440300"), write=False).status == "registered"
