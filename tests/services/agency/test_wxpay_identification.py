"""WeChat Pay's identification in the stored configuration (issue 14's gap): a connector built from the database runs
either of WeChat's modes — the platform public key named by its PUB_KEY_ID_, or platform certificates downloaded from
/v3/certificates — and signs contracts under the configured plan; each field is checked by name. Both databases."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.channels import CLIENT_TIMEOUT_S, serve_in_thread
from tests.support.identity import admit
from yibao.channels.base import NotFoundAtChannel
from yibao.domain.errors import InputError
from yibao.services.agency import connectors as channel_registry


def _configure(db, keyring, pi_id, **settings):  # noqa: ANN001, ANN202
    return db.run(lambda c: channel_registry.configure(c, keyring, db.clock(), pi_id=pi_id, actor="test", **settings))


def _stored(db, pi_id):  # noqa: ANN001, ANN202
    return db.run(lambda c: channel_registry.require(c, pi_id), write=False)


def test_public_key_mode_stores_the_key_id_and_plan_and_the_built_connector_verifies_the_sandbox(db, keyring, wxpay):
    admit(db, "wxpay-440300")
    settings = channel_registry.settings_of(wxpay.channel)
    assert settings["certificate_mode"] == "public_key" and settings["platform_key_id"].startswith("PUB_KEY_ID_")
    view = _configure(db, keyring, "wxpay-440300", **{**settings, "plan_id": 77001})
    assert (view["certificate_mode"], view["platform_key_id"], view["plan_id"]) == ("public_key", settings["platform_key_id"], 77001)
    built = channel_registry.build(_stored(db, "wxpay-440300"), keyring)
    assert built.config.platform_serial == settings["platform_key_id"] and built.config.plan_id == 77001
    assert not built.config.platform_certificates
    with pytest.raises(NotFoundAtChannel):  # a signed answer, verified by the key named by its id
        asyncio.run(built.query("NOSUCHORDER0001"))


def test_the_deduction_notice_is_part_of_the_stored_configuration_on_by_default(db, keyring, wxpay):
    """Whether the merchant's papay template requires the 预扣费通知 is stored with the other wxpay settings, shown, and
    what the connector built from the database does; not said, it is on (WeChat's recurring templates require it)."""
    admit(db, "wxpay-440300")
    settings = {k: v for k, v in channel_registry.settings_of(wxpay.channel).items() if k != "deduct_notice"}
    assert _configure(db, keyring, "wxpay-440300", **settings)["deduct_notice"] is True
    assert channel_registry.build(_stored(db, "wxpay-440300"), keyring).config.deduct_notice is True
    view = _configure(db, keyring, "wxpay-440300", **settings, deduct_notice=False)
    assert view["deduct_notice"] is False and _stored(db, "wxpay-440300").deduct_notice is False
    assert channel_registry.build(_stored(db, "wxpay-440300"), keyring).config.deduct_notice is False
    assert channel_registry.settings_of(channel_registry.build(_stored(db, "wxpay-440300"), keyring))["deduct_notice"] is False


def test_certificate_mode_needs_no_public_key_and_downloads_the_platform_certificates(db, keyring):
    from yibao.sandbox.channels import pair

    p = pair("wxpay", seed=7, notify_delays_ms=(), identification="certificate")
    url, server, thread, sock = serve_in_thread(p.app, "sandbox-wxpay-certificates")
    try:
        admit(db, "wxpay-cert")
        settings = channel_registry.settings_of(p.connector(url, timeout=CLIENT_TIMEOUT_S))
        assert settings["certificate_mode"] == "certificates" and settings["institution_public_key_pem"] is None
        view = _configure(db, keyring, "wxpay-cert", **settings)
        assert view["certificate_mode"] == "certificates" and view["institution_key_serial"] is None
        built = channel_registry.build(_stored(db, "wxpay-cert"), keyring)
        assert built.config.platform_certificates and built.config.platform_key is None
        with pytest.raises(NotFoundAtChannel):
            asyncio.run(built.query("NOSUCHORDER0002"))
        assert built.certificates, "the platform certificates were downloaded"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.parametrize("override, field, code", [
    ({"certificate_mode": "cert"}, "certificate_mode", "invalid_choice"),
    ({"platform_key_id": "KEY_1"}, "platform_key_id", "invalid_text"),
    ({"platform_key_id": "PUB_KEY_ID_0114", "certificate_mode": "certificates"}, "platform_key_id", "not_applicable"),
    ({"plan_id": 0}, "plan_id", "out_of_range"),
    ({"plan_id": True}, "plan_id", "out_of_range"),
    ({"deduct_notice": "yes"}, "deduct_notice", "invalid_choice"),
    ({"certificate_mode": "public_key", "institution_public_key_pem": None}, "institution_public_key_pem", "invalid_key"),
])
def test_each_wxpay_field_is_checked_by_name(db, keyring, wxpay, override, field, code):
    admit(db, "wxpay-440300")
    with pytest.raises(InputError) as exc:
        _configure(db, keyring, "wxpay-440300", **{**channel_registry.settings_of(wxpay.channel), **override})
    assert (exc.value.field, exc.value.code) == (field, code)


@pytest.mark.parametrize("field, value", [("platform_key_id", "PUB_KEY_ID_0114"), ("certificate_mode", "public_key"), ("plan_id", 1),
                                          ("deduct_notice", False)])
def test_another_connector_refuses_wxpay_fields(db, keyring, alipay, field, value):
    admit(db, "alipay-440300")
    with pytest.raises(InputError) as exc:
        _configure(db, keyring, "alipay-440300", **{**channel_registry.settings_of(alipay.channel), field: value})
    assert (exc.value.field, exc.value.code) == (field, "not_applicable")
