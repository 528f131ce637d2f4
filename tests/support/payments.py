"""Set-up for payment tests: a hospital, a holder with an e-card bound to a SANDBOX institution, codes, flows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tests.support.identity import admit, bind, ecard, id_number_of, name_of
from tests.support.world import World, seed
from yibao.crypto.pii import Keyring
from yibao.domain.ledger import fund_account, institution_cash, institution_receivable, person_account
from yibao.services import Context
from yibao.services.agency import connectors as channel_registry
from yibao.services.books import ledger
from yibao.services.payments import onecode, paycodes
from yibao.services.payments import pins as payment_pins
from yibao.store.db import Database

LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "300.00", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D0042"},
    {"feedetl_sn": "3", "medins_list_codg": "C900", "name": "保健品", "unit_price": "50.00", "quantity": "1"},
]
BIG_LINES = [*LINES, {"feedetl_sn": "9", "medins_list_codg": "C901", "name": "护理用品", "unit_price": "4000.00", "quantity": "1"}]


@dataclass
class PaymentWorld:
    w: World
    pi_id: str
    db: Database
    keyring: Keyring

    def code(self, holder_id: str | None = None, person_id: str | None = None) -> str:
        holder = holder_id or self.w.employee.id
        return self.db.run(lambda c: paycodes.issue(c, self.keyring, self.db.clock(), holder_id=holder, person_id=person_id,
                                                    actor="test")).code

    def ctx(self, channels: channel_registry.Channels | None = None) -> Context:
        return Context.for_database(self.db, self.keyring, channels)

    def pay(self, *, key: str, code: str | None = None, lines: list[dict] | None = None, visit_id: str | None = None,
            use_account: bool = False, ctx: Context | None = None, request_hash: str = "h"):
        code = code or self.code()
        if visit_id is None and lines is None:
            lines = LINES
        return asyncio.run(onecode.pay(ctx or self.ctx(), institution=self.w.hospital, request_key=key, request_hash=request_hash,
                                                code=code, terminal_id="T1", visit_id=visit_id, lines=lines, use_account=use_account,
                                                actor="his:test"))

    def set_pin(self, person_id: str, pin: str) -> None:
        salt = payment_pins.new_salt()
        h = payment_pins.pin_hash(self.keyring, pin, salt)
        result = self.db.run(lambda c: payment_pins.set_pin(c, self.db.clock(), person_id=person_id, salt=salt, new_hash=h,
                                                            old_candidate=None, old_salt=None, actor="test"))
        assert isinstance(result, dict), result

    def balances(self) -> dict[str, int]:
        def read(c) -> dict[str, int]:  # noqa: ANN001
            accounts = {"holder": person_account(self.w.employee.id), "pool": fund_account("440300", "pool"),
                        "receivable": institution_receivable(self.w.hospital.id), "hospital_cash": institution_cash(self.w.hospital.id)}
            out = {k: ledger.balance(c, a) for k, a in accounts.items()}
            out["holder_available"] = ledger.available(c, accounts["holder"])
            t = ledger.totals(c)
            out["pending"] = t.debits_pending
            assert t.balanced, t
            return out
        return self.db.run(read, write=False)


def configure_channel(db: Database, keyring: Keyring, pi_id: str, channel: Any, **override: Any) -> None:
    settings = {**channel_registry.settings_of(channel), **override}
    db.run(lambda c: channel_registry.configure(c, keyring, db.clock(), pi_id=pi_id, actor="test", **settings))


def payment_world(db: Database, keyring: Keyring, live: Any, *, limit: int = 100000, balance: int = 50000, signed: bool = True,
                  **override: Any) -> PaymentWorld:
    """A holder (seed's employee, with ``balance`` fen) with an e-card bound to the SANDBOX ``live`` by default, who has
    signed the password-free agreement there once, through the page flow (``signed``; a bank: enrolled with consent)."""
    w = seed(db, keyring, balance=balance)
    ecard(db, keyring, w.employee.id, name_of(1), id_number_of(1))
    pi_id = f"{live.name}-440300"
    admit(db, pi_id, kind="bank" if live.name == "bank" else "wallet")
    if getattr(live, "notify_url", "") and not getattr(live.channel.config, "notify_url", None):
        override = {"notify_url": live.notify_url, **override}  # the institution tells the test's callback server
    configure_channel(db, keyring, pi_id, live.channel, **override)
    bind(db, w.employee.id, pi_id, password_free_limit=limit, make_default=True)
    pw = PaymentWorld(w, pi_id, db, keyring)
    if signed:
        sign_agreement(pw)
    return pw


def sign_agreement(pw: PaymentWorld, holder_id: str | None = None, *, decision: str = "confirm") -> dict[str, Any]:
    """The holder signs on the institution's page as in the app: start (the platform), the sandbox's page (GET, confirm),
    then the platform asks the institution (`refresh`). Returns the agreement's state as the app sees it."""
    from tests.support.channels import play_holder
    from yibao.channels.base import SigningStart
    from yibao.services.payments import agreements

    holder = holder_id or pw.w.employee.id

    async def flow() -> dict[str, Any]:
        ctx = pw.ctx()
        started = await agreements.start(ctx, holder_id=holder, pi_id=pw.pi_id, return_url=None, actor="test")
        if started["status"] == "active":
            return started
        s = started["signing"]
        await play_holder(SigningStart(started["out_agreement_no"], s["url"], s["method"], s["form"]), decision)
        return await agreements.refresh(ctx, holder_id=holder, pi_id=pw.pi_id, actor="test")
    state = asyncio.run(flow())
    assert state["status"] == ("active" if decision == "confirm" else "pending"), state
    return state


class PlatformServer:
    """The platform app under uvicorn on 127.0.0.1 (lifespan on), in a thread: institutions can reach its
    notify endpoint, and tests call it over real HTTP."""

    def __init__(self, app_factory: Any) -> None:
        import socket
        import threading
        import time

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = app_factory(self.url)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True, name="platform")
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the platform did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


def wait_until(predicate: Any, *, what: str, seconds: float = 20.0, step: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy (a wait for an asynchronous effect, not a timed assertion)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(step)
