"""mount_all: every sandbox under /sandbox/{name} of one app, reached over HTTP with paths signed below the mount."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from fastapi import FastAPI

from tests.support.channels import CLIENT_TIMEOUT_S, serve_in_thread, sign_on_page
from yibao.channels import AgreementRequest, OutcomeUnknown, PaymentRequest, holder_token
from yibao.channels.wire import china_time
from yibao.sandbox.channels import NAMES, mount_all


def test_every_sandbox_mounted_in_one_app_pays_and_gives_its_statement():
    app = FastAPI(title="demo")
    pairs = mount_all(app, base_url="http://unused", notify_delays_ms=(10,))
    assert sorted(pairs) == sorted(NAMES) and app.state.sandbox_institutions is pairs
    url, server, thread, sock = serve_in_thread(app, "mounted-sandboxes")
    try:
        async def story(name: str):
            channel = pairs[name].connector(f"{url}/sandbox/{name}", timeout=CLIENT_TIMEOUT_S)
            out_agreement, out_trade = uuid.uuid4().hex[:20], uuid.uuid4().hex[:20]
            agreement = await sign_on_page(channel, AgreementRequest(out_agreement, holder_token(b"m" * 32, "p", name), 100_00,
                                                                      notify_url=f"{url}/sandbox/{name}/sandbox/info"))
            paid = await channel.pay(PaymentRequest(out_trade, 9_99, "门诊缴费", agreement.agreement_no))
            statement = await channel.statement(china_time(paid.paid_at).date())
            # A cut answer (the knob) reaches the caller through the mount as a dropped connection: booked, answer lost.
            pairs[name].runtime.set_knobs(cut_answer_rate=1.0)
            cut = uuid.uuid4().hex[:20]
            try:
                with pytest.raises(OutcomeUnknown) as lost:
                    await channel.pay(PaymentRequest(cut, 1_00, "门诊缴费", agreement.agreement_no))
            finally:
                pairs[name].runtime.set_knobs(cut_answer_rate=0.0)
            assert lost.value.code == "unreachable"
            assert (await channel.query(cut)).status == "succeeded"
            return paid, statement

        for name in NAMES:
            paid, statement = asyncio.run(story(name))
            assert paid.status == "succeeded"
            assert [r.amount_fen for r in statement.rows if r.out_trade_no == paid.out_trade_no] == [9_99]
            assert isinstance(statement.day, date)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
