"""A payment process that dies midway: run by tests/services/payments/test_payment_kill.py as a subprocess.

It pays one code against a SANDBOX institution on loopback and kills itself with os._exit (no
clean-up, no rollback, no finally blocks) at the point named by YIBAO_KILL_AT:
- ``after_hold``: right after the unit that held the settlement committed and left the order ``held`` (a payer who has
  not signed the agreement: the order is voided next, never signed on the fly);
- ``before_cash_call``: right after the unit that held the settlement and recorded ``cash_requested`` committed, before
  the institution is called (a payer who signed);
- ``after_cash_request``: right after the institution answered the cash request (the answer is lost).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from datetime import datetime

import httpx

from yibao.crypto.pii import Keyring
from yibao.domain import payment_order as po
from yibao.services import Context
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import institutions
from yibao.services.payments import onecode
from yibao.services.payments.orders import Order
from yibao.store.db import Database

KILLED = 137


class KillAfterPay(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and "/pay/" in request.url.path:
            await response.aread()  # the institution has booked it; we die before reading what it said
            sys.stdout.flush()
            os._exit(KILLED)
        return response


def main() -> None:
    args = json.loads(sys.argv[1])
    now = datetime.fromisoformat(args["now"])
    db = Database(args["database"], clock=lambda: now)
    keyring = Keyring(bytes.fromhex(args["key"]))
    kill_at = args["kill_at"]
    channels = channel_registry.Connectors(keyring, transport=KillAfterPay() if kill_at == "after_cash_request" else None)
    ctx = Context.for_database(db, keyring, channels)
    if kill_at in ("after_hold", "before_cash_call"):
        inner = ctx.run
        stop_at = po.HELD if kill_at == "after_hold" else po.CASH_REQUESTED

        async def run(work, *, write=True):  # noqa: ANN001, ANN202
            result = await inner(work, write=write)
            order = getattr(result, "order", result)  # the hold's unit answers a cash.Held
            if write and isinstance(order, Order) and order.status == stop_at:
                print(order.id, flush=True)
                os._exit(KILLED)  # the unit is committed; nothing after it happens
            return result
        ctx = dataclasses.replace(ctx, run=run)
    institution = db.run(lambda c: institutions.get(c, args["institution"]), write=False)
    order = asyncio.run(onecode.pay(ctx, institution=institution, request_key=args["key_id"], request_hash="h", code=args["code"],
                            terminal_id=None, visit_id=None, lines=args["lines"], use_account=True, actor="his:child"))
    print(f"not killed: {order.status}", flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
