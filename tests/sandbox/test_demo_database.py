"""The demo only ever takes a database it created (SQLite and PostgreSQL): it marks the one it loads its world
into, refuses any other that holds data, and never re-points a payment institution whose channel
configuration it did not write — so a real institution cannot be sent to an in-process sandbox."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.world import seed
from yibao.app import create_app
from yibao.domain.errors import Conflict
from yibao.sandbox import demo
from yibao.sandbox.channels import pair
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis
from yibao.store.tables import institutions

REAL = "https://api.mch.weixin.qq.com"


def _admit_and_configure(db, keyring, pi_id: str, base_url: str) -> channel_registry.ChannelConfig:  # noqa: ANN001
    now = db.clock()
    if db.run(lambda c: pis.get(c, pi_id), write=False) is None:
        db.run(lambda c: pis.admit(c, now, pi_id=pi_id, region="440300", name="微信支付", kind="wallet", admission_ref="深医保准〔2026〕1",
                                   actor="operator:alice"))
    settings = channel_registry.settings_of(pair("wxpay").connector(base_url, notify_url=f"https://yibao.example/api/v1/channels/{pi_id}/notify"))
    db.run(lambda c: channel_registry.configure(c, keyring, now, pi_id=pi_id, actor="operator:alice", **settings))
    return db.run(lambda c: channel_registry.get(c, pi_id), write=False)


def test_the_demo_marks_the_empty_database_it_loads(db, keyring):
    from yibao.runtime import marks

    assert not db.run(marks.is_demo, write=False)
    demo.ensure(db, keyring)
    assert db.run(marks.is_demo, write=False)
    assert not demo.ensure(db, keyring).created  # its own database: used again as it is


def test_the_demo_refuses_a_database_it_did_not_create(db, keyring):
    seed(db, keyring)
    count = db.run(lambda c: c.execute(select(func.count()).select_from(institutions)).scalar_one(), write=False)
    with pytest.raises(Conflict) as refused:
        demo.ensure(db, keyring)
    assert (refused.value.field, refused.value.code) == ("database", "not_a_demo_database")
    assert "--demo" in refused.value.message_en and "--demo" in refused.value.message_zh
    # nothing of the demo written: no mark, no demo institution
    from yibao.store.tables import platform_marks

    assert db.run(lambda c: c.execute(select(func.count()).select_from(platform_marks)).scalar_one(), write=False) == 0
    assert db.run(lambda c: c.execute(select(func.count()).select_from(institutions)).scalar_one(), write=False) == count


def test_a_real_institutions_configuration_survives_a_demo_start_on_its_database(db, keyring):
    seed(db, keyring)
    before = _admit_and_configure(db, keyring, "wechat-440300", REAL)  # a demo-named id, configured for real
    with pytest.raises(Conflict):
        demo.ensure(db, keyring)  # what `yibao serve --demo` does first: refused
    # and an app built with the sandbox wing anyway (a test's, an embedding's): its start-up leaves it alone
    with TestClient(create_app(db, keyring=keyring, sandboxes=True, base_url="http://127.0.0.1:8000")):
        pass
    after = db.run(lambda c: channel_registry.get(c, "wechat-440300"), write=False)
    assert (after.base_url, after.version, after.notify_url) == (REAL, before.version, before.notify_url)


def test_the_demo_never_re_points_a_channel_an_operator_configured(db, keyring):
    demo.ensure(db, keyring)
    demo.configure_sandbox_channels(db, keyring, {"wxpay": pair("wxpay"), "alipay": pair("alipay")}, "http://127.0.0.1:8000")
    first = {pi: db.run(lambda c, pi=pi: channel_registry.get(c, pi), write=False) for pi in ("wechat-440300", "alipay-440300")}
    assert first["alipay-440300"].base_url == "http://127.0.0.1:8000/sandbox/alipay"
    operators = _admit_and_configure(db, keyring, "wechat-440300", REAL)  # the agency points it at the real institution
    assert operators.version == first["wechat-440300"].version + 1

    demo.configure_sandbox_channels(db, keyring, {"wxpay": pair("wxpay"), "alipay": pair("alipay")}, "http://127.0.0.1:8001")  # a restart
    wechat = db.run(lambda c: channel_registry.get(c, "wechat-440300"), write=False)
    alipay = db.run(lambda c: channel_registry.get(c, "alipay-440300"), write=False)
    assert (wechat.base_url, wechat.version) == (REAL, operators.version)  # the operator's: left alone
    assert (alipay.base_url, alipay.version) == ("http://127.0.0.1:8001/sandbox/alipay", first["alipay-440300"].version + 1)  # the demo's own
