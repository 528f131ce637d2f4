"""The SANDBOX admin endpoints every sandbox institution shares (under /sandbox/…), and its runtime object.

Not part of any real institution's API. Unauthenticated: a sandbox is for tests and the demo only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from yibao.channels.crypto import public_pem
from yibao.sandbox.channels.core import AnswerCut, Books, KnobsPatch, SandboxInfo, SandboxRefusal, StatementFaults
from yibao.sandbox.channels.notifier import Notifier


@dataclass
class Runtime:
    """A running sandbox as a Python object: ``books`` (state and knobs), ``notifier``, ``info``."""

    info: SandboxInfo
    books: Books
    notifier: Notifier
    public_key_pem: bytes | None = None  # the sandbox's own public key, for configuring the platform side
    med_ins: Any = None  # the medical-insurance trade's state (wxpay_medins.MedIns, alipay_medins.AlipayMedIns), if it has one

    def set_knobs(self, **patch: Any) -> dict[str, Any]:
        return self.books.set_knobs(KnobsPatch(**patch).model_dump(exclude_none=True)).model_dump()

    def reset(self) -> None:
        self.books.reset()


class MerchantRefund(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out_trade_no: str = Field(min_length=1, max_length=64)
    amount_fen: int = Field(gt=0, le=10**12)


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(0, ge=0, le=3650)
    seconds: int = Field(0, ge=0, le=86_400 * 30)


class StartNotifier:
    """Starts the resend loop on the serving event loop at the first request (and again if that loop has changed).

    A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware costs a task and stream
    plumbing per request (~13% of the sandbox's CPU per payment in bench/payments.py). Not a startup hook either:
    tests serve sandboxes with lifespan off, and the demo mounts them in its own app, where a mounted app's
    lifespan never runs."""

    def __init__(self, app: ASGIApp, notifier: Notifier) -> None:
        self.app, self.notifier = app, notifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.notifier.ensure_started()
        await self.app(scope, receive, send)


class CutAnswer(Response):
    """An answer that begins (200, a Content-Length it never reaches) and is then cut off: the knob's exception,
    raised again after the start, makes the server close the connection (ASGI: an app that fails after starting its
    answer has the connection closed), as a network that drops mid-answer would. The server logs that exception; its
    message names the knob."""

    def __init__(self, cut: AnswerCut) -> None:
        super().__init__()
        self.cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")]})
        await send({"type": "http.response.body", "body": b'{"', "more_body": True})
        raise self.cut


async def _cut(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AnswerCut)  # registered for AnswerCut only (install)
    return CutAnswer(exc)


def install(app: FastAPI, runtime: Runtime) -> None:
    app.state.sandbox = runtime
    app.add_exception_handler(AnswerCut, _cut)  # the cut_answer_rate knob, from any business call of this sandbox
    router = APIRouter(prefix="/sandbox", tags=["SANDBOX admin"])

    app.add_middleware(StartNotifier, notifier=runtime.notifier)

    @router.get("/info", summary="What this sandbox is (and its public key)")
    async def info() -> dict[str, Any]:
        return {"sandbox": True, "name": runtime.info.name, "title": runtime.info.title, "signature_scheme": runtime.info.scheme,
                "public_key_pem": runtime.public_key_pem.decode() if runtime.public_key_pem else None, **runtime.info.extra}

    @router.get("/knobs", summary="Current failure-injection knobs")
    async def get_knobs() -> dict[str, Any]:
        return runtime.books.knobs.model_dump()

    @router.put("/knobs", summary="Change knobs (only the fields given)")
    async def put_knobs(patch: KnobsPatch) -> dict[str, Any]:
        return runtime.books.set_knobs(patch.model_dump(exclude_none=True)).model_dump()

    @router.post("/reset", summary="Knobs back to defaults and the clock back to now (the books stay)")
    async def reset() -> dict[str, Any]:
        runtime.reset()
        return runtime.books.knobs.model_dump()

    @router.post("/notifications/flush", summary="Send every pending notification now; counts by state")
    async def flush() -> dict[str, int]:
        return await runtime.notifier.flush()

    @router.get("/notifications", summary="Every notification and its delivery state")
    async def notifications() -> list[dict[str, Any]]:
        return [d.view() for d in runtime.notifier.deliveries]

    @router.post("/clock", summary="Move the sandbox's clock forward (due dates, overdue bills)")
    async def clock(move: ClockMove) -> dict[str, str]:
        runtime.books.clock_offset += timedelta(days=move.days, seconds=move.seconds)
        return {"now": runtime.books.now().isoformat()}

    @router.put("/statement-faults", summary="What the next statements get wrong: amounts altered, rows dropped or doubled")
    async def put_faults(faults: StatementFaults) -> dict[str, Any]:
        runtime.books.faults = faults
        return faults.model_dump()

    @router.post("/merchant-refunds", summary="Refund a trade at the institution without the platform asking (told to nobody)")
    async def merchant_refund(body: MerchantRefund) -> Any:
        try:
            rec = runtime.books.merchant_refund(body.out_trade_no, body.amount_fen)
        except SandboxRefusal as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
        return {"out_trade_no": rec.out_trade_no, "out_refund_no": rec.out_refund_no, "refund_id": rec.refund_id,
                "amount_fen": rec.amount_fen, "status": rec.status, "at": rec.at.isoformat()}

    app.include_router(router)


def public_key_of(key: Any) -> bytes:
    return public_pem(key)


def own_base_url(request: Request) -> str:
    """This sandbox's own URL, mount prefix included (Starlette's base_url is the top-level app's)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}".rstrip("/")
