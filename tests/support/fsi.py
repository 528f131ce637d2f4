"""The national interface in tests: an institution's gateway credential, and a HIS that calls the gateway through the
shared envelope builder (yibao.formats.fsi) — the one the `yibao fsi call` client uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from yibao.formats import fsi as wire
from yibao.services.agency import gateway_credentials
from yibao.store.db import Database

PATH = "/fsi/api/rsfComIfsService/callService"
TOKEN = "test-fsi-token-0123456789"

# The same items as tests.support.api.LINES, the national way.
FEEDETAIL = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "medins_list_name": "诊查费", "pric": Decimal("300.00"), "cnt": 1,
     "det_item_fee_sumamt": Decimal("300.00")},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "medins_list_name": "头孢克肟胶囊", "pric": Decimal("12.50"),
     "cnt": 2, "rxno": "RX1", "bilg_dr_codg": "D0042"},
]


def issue(db: Database, keyring, institution_id: str, token: str = TOKEN, **kw: Any) -> gateway_credentials.GatewayCredential:  # noqa: ANN001
    return db.run(lambda c: gateway_credentials.issue(c, keyring, db.clock(), institution_id=institution_id, actor="test", token=token, **kw))


@dataclass
class His:
    """A HIS at ``sender``'s institution, calling through a TestClient (or anything with .post)."""

    client: Any
    sender: wire.Sender
    clock: Any
    sign_no: str = ""
    seq: int = 0
    sent: list[str] = field(default_factory=list)

    def msgid(self) -> str:
        self.seq += 1
        return wire.new_msgid(self.sender.fixmedins_code, self.clock(), self.seq)

    def raw(self, infno: str, payload: dict[str, Any], *, msgid: str | None = None, headers: dict[str, str] | None = None,
            envelope: dict[str, Any] | None = None, body: bytes | None = None, insuplc_admdvs: str = ""):  # noqa: ANN201
        at = self.clock()
        env = envelope or wire.envelope(self.sender, infno, payload, at, msgid=msgid or self.msgid(), sign_no=self.sign_no,
                                        insuplc_admdvs=insuplc_admdvs)
        h = headers or {"Content-Type": "application/json", **wire.gateway_headers(self.sender.fixmedins_code, self.sender.token, at)}
        r = self.client.post(PATH, content=body if body is not None else wire.dumps(env).encode(), headers=h)
        assert r.status_code == 200, r.text
        self.sent.append(str(env.get("msgid")))
        return wire.open_output(self.sender, wire.loads(r.content))

    def ok(self, infno: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
        answer = self.raw(infno, payload, **kw)
        assert answer["infcode"] == 0, answer["err_msg"]
        return answer["output"]

    def refused(self, infno: str, payload: dict[str, Any], *words: str, **kw: Any) -> str:
        answer = self.raw(infno, payload, **kw)
        assert answer["infcode"] == -1 and answer["err_msg"], answer
        for w in words:
            assert w in answer["err_msg"], answer["err_msg"]
        return answer["err_msg"]

    def sign_in(self) -> str:
        out = self.ok("9001", {"signIn": {"opter_no": "001", "mac": "00-11-22-33-44-55", "ip": "10.0.0.8"}})
        self.sign_no = out["signinoutb"]["sign_no"]
        return self.sign_no


def his(client, inst, clock, token: str = TOKEN, **kw: Any) -> His:  # noqa: ANN001
    return His(client, wire.Sender(inst.id, token, fixmedins_name=inst.name, mdtrtarea_admvs=inst.region, **kw), clock)
