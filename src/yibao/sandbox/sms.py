"""SANDBOX SMS gateway: a real HTTP service that stands in for a text-message provider. It sends nothing.

The platform reaches it as it would a real gateway (yibao.sms.SmsGateway): `POST /messages` signed with
HMAC-SHA256 over the body (`X-Sms-Signature`) under the shared key, the body carrying its own time
(`sent_at`, refused when more than five minutes off: a copied request cannot be replayed later); the
answer is signed with the same key and echoes the request's `request_id`.

What it "sent" it keeps in ITS OWN memory (the last `KEEP` messages) — the platform keeps no copy of any
text, so no log-in code is ever readable from the platform. The demo and the tests read them here:
`GET /messages?phone=…` (JSON, newest first) and `GET /outbox` (a page for the demo visitor, phones
masked). Like every sandbox, it is for the demo only: anyone who can reach it reads the codes.
Knobs (`PUT /knobs`): latency, error rate (answered 503).

    YIBAO_SMS_KEY=... python -m yibao.sandbox.sms --port 8702
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import secrets
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.sms import signing

DEMO_SMS_KEY = "demo-sms-sandbox-key"  # the demo's shared key with its own sandbox gateway
KEEP = 500
CHINA = timezone(timedelta(hours=8))


def sms_key() -> str:
    """The key the demo shares with its sandbox gateway ($YIBAO_SMS_KEY, else the demo's)."""
    return os.environ.get("YIBAO_SMS_KEY", DEMO_SMS_KEY)


def _mask(phone: str) -> str:
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageIn(_Strict):
    request_id: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^1\d{10}$")
    text: str = Field(min_length=1, max_length=500)
    sent_at: int


class Knobs(_Strict):
    latency_ms: int = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered 503")


class KnobsPatch(_Strict):
    latency_ms: int | None = Field(None, ge=0, le=60_000)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)


class SmsSandboxState:
    def __init__(self, key: bytes, knobs: Knobs, seed: int | None) -> None:
        self.key = key
        self.knobs = knobs
        self.random = random.Random(seed)
        self.messages: deque[dict[str, Any]] = deque(maxlen=KEEP)

    def sent_to(self, phone: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """What was sent (to ``phone``), newest first."""
        found = [m for m in reversed(self.messages) if phone is None or m["phone"] == phone]
        return found[:limit]


def create_app(key: bytes | str, *, latency_ms: int = 0, error_rate: float = 0.0, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="yibao SANDBOX SMS gateway (sends nothing)", version="1")
    state = SmsSandboxState(key.encode() if isinstance(key, str) else key, Knobs(latency_ms=latency_ms, error_rate=error_rate), seed)
    app.state.sandbox = state

    def signed(payload: dict[str, Any], status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(body, status_code=status, media_type="application/json", headers={signing.HEADER: signing.sign(state.key, body)})

    def error(status: int, code: str, message: str, request_id: str | None = None) -> Response:
        return signed({"request_id": request_id, "error": {"code": code, "message": message}}, status)

    @app.post("/messages", status_code=201, summary="Send one text message (kept here, sent nowhere)")
    async def send(request: Request) -> Response:
        body = await request.body()
        if state.knobs.latency_ms:
            await asyncio.sleep(state.knobs.latency_ms / 1000)
        if state.knobs.error_rate and state.random.random() < state.knobs.error_rate:
            return error(503, "sandbox_injected_error", "injected failure (error_rate knob)")
        if not signing.valid(state.key, body, request.headers.get(signing.HEADER)):
            return error(401, "bad_signature", "the request signature is missing or wrong")
        try:
            msg = MessageIn.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            return error(422, "invalid_request", f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}")
        if abs(time.time() - msg.sent_at) > signing.MAX_SKEW_S:
            return error(401, "stale_request", "the request's sent_at is more than five minutes off", msg.request_id)
        message_id = "SMS" + secrets.token_hex(12).upper()
        state.messages.append({"id": message_id, "phone": msg.phone, "text": msg.text,
                               "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        return signed({"request_id": msg.request_id, "message_id": message_id, "status": "sent"}, 201)

    @app.get("/messages", summary="What was sent (to one phone), newest first — the demo's and the tests' view")
    async def messages(phone: str | None = Query(None, max_length=20), limit: int = Query(20, ge=1, le=KEEP)) -> dict[str, Any]:
        return {"items": [{"id": m["id"], "phone": _mask(m["phone"]), "text": m["text"], "at": m["at"]}
                          for m in state.sent_to(phone, limit)]}

    @app.get("/outbox", response_class=HTMLResponse, summary="The outbox as a page, for the demo visitor (phones masked)")
    async def outbox() -> HTMLResponse:
        items = "".join(
            f'<li><span class="muted">{html.escape(datetime.fromisoformat(m["at"]).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"))}'
            f' · {html.escape(_mask(m["phone"]))}</span><br>{html.escape(m["text"])}</li>' for m in state.sent_to(None, 20))
        body = (f'<ul class="outbox" id="outbox">{items}</ul>' if items else "<p>发件箱为空。The outbox is empty.</p>")
        page = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
                "<title>沙箱短信网关（演示）SANDBOX SMS gateway</title></head><body>"
                "<h1>沙箱短信网关发件箱（演示）<br>SANDBOX SMS gateway — outbox (demo)</h1>"
                "<p>演示环境不发送真实短信：短信网关沙箱把“发出”的短信留在它自己的内存里，平台不保存任何短信内容。<br>"
                "The demo sends no real text messages: the sandbox gateway keeps what it was asked to send in its own memory; "
                "the platform keeps no copy.</p>"
                f"{body}<p><a href=\"/app/login\">返回登录 Back to log-in</a></p></body></html>")
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                           "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})

    @app.get("/knobs", summary="Current knobs")
    async def get_knobs() -> dict[str, Any]:
        return state.knobs.model_dump()

    @app.put("/knobs", summary="Change knobs (only the fields given)")
    async def put_knobs(patch: KnobsPatch) -> dict[str, Any]:
        state.knobs = state.knobs.model_copy(update=patch.model_dump(exclude_none=True))
        return state.knobs.model_dump()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "kept": len(state.messages)}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the SANDBOX SMS gateway (sends nothing).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    args = parser.parse_args(argv)
    key = os.environ.get("YIBAO_SMS_KEY")
    if not key:
        parser.error("set YIBAO_SMS_KEY to the key shared with the platform")
    uvicorn.run(create_app(key), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
