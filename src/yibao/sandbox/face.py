"""SANDBOX face verifier: a real HTTP service that stands in for a recognition provider.

Not a real recognition system. It enrols reference templates from captures and compares a live
capture 1:1 with a template (cosine similarity of pixel features, see yibao.face.features), and
decides liveness ITSELF, from the capture — never from what the caller says about it. Requests and
responses are signed with HMAC-SHA256 over the body (`X-Face-Signature`); a response echoes the
request's `request_id`, so a client cannot be fed an answer meant for another request, and the
platform trusts only the signed answer. Knobs (constructor or `PUT /knobs`): latency, error rate,
forced mismatch, thresholds.

The sandbox's liveness rule (a stand-in for a real presentation-attack detector, documented so the demo
and the tests can rely on it): a capture is live when
1. it carries a camera's sensor noise — the median absolute Laplacian of its grey levels (each pixel
   less the mean of its four neighbours) is at least `noise_threshold` (2.0): a still image — the
   enrolment photo replayed as a file, or re-rendered under other light — is smooth where a live
   capture is grainy (the sample faces: day 0 ≤ 0.5, live days 4–7); and
2. it is not the enrolled image again: its features are less than `replay_similarity` (0.9999) alike
   to the template's (two captures of a live face never are; the enrolment image and any copy of it
   with other brightness or contrast are, to the fourth decimal).
The request's `liveness` (the terminal's claim: a method and a score) is accepted for compatibility and
ignored for the decision; its `method` is echoed as the sensor the terminal says it used.

    YIBAO_FACE_KEY=... python -m yibao.sandbox.face --port 8701
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import struct
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.face import signing
from yibao.face.features import CaptureError, decode_capture, feature_vector, similarity
from yibao.face.image import ImageError, decode_grey

DEMO_FACE_KEY = "demo-face-sandbox-key"  # the demo's shared key with its own sandbox verifier


def face_key() -> str:
    """The key the demo shares with its sandbox verifier ($YIBAO_FACE_KEY, else the demo's)."""
    return os.environ.get("YIBAO_FACE_KEY", DEMO_FACE_KEY)

LIVENESS_METHODS = ("structured_light", "tof", "action")  # 3D structured light, 3D time of flight, action prompts


def seal_template(key: bytes, vector: list[float]) -> str:
    """A template is sealed, not stored: the quantised features plus an HMAC under the sandbox key.

    Like a provider's opaque template, the platform keeps it; unlike an in-memory table, it survives
    a restart and works whichever worker process answers.
    """
    payload = struct.pack(f">{len(vector)}h", *(round(v * 32767) for v in vector))
    tag = hmac.new(key, b"template:" + payload, hashlib.sha256).hexdigest()[:32]
    return "tpl_" + base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + tag


def open_template(key: bytes, template_id: str) -> list[float] | None:
    """The features inside a sealed template, or None if it was not sealed with this key."""
    if not template_id.startswith("tpl_") or "." not in template_id:
        return None
    body, _, tag = template_id[4:].partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    expected = hmac.new(key, b"template:" + payload, hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(tag, expected) or len(payload) % 2:
        return None
    return [v / 32767 for v in struct.unpack(f">{len(payload) // 2}h", payload)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Knobs(_Strict):
    latency_ms: int = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered 503")
    force_mismatch: bool = False
    threshold: float = Field(0.80, ge=0.0, le=1.0, description="similarity at or above which two faces match")
    noise_threshold: float = Field(2.0, ge=0.0, le=255.0, description="sensor noise (median |Laplacian|) a live capture shows at least")
    replay_similarity: float = Field(0.9999, ge=0.0, le=1.0, description="similarity to the template at which a capture is the enrolled image")


class KnobsPatch(_Strict):
    latency_ms: int | None = Field(None, ge=0, le=60_000)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    force_mismatch: bool | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    noise_threshold: float | None = Field(None, ge=0.0, le=255.0)
    replay_similarity: float | None = Field(None, ge=0.0, le=1.0)


class TemplateIn(_Strict):
    request_id: str = Field(min_length=1, max_length=64)
    capture: str = Field(min_length=1, max_length=400_000, description="base64 JPEG or PNG")


class Liveness(_Strict):
    """What the terminal says about its liveness check: the sensor it used. A score may come along (older
    clients send one); it decides nothing."""

    method: Literal["structured_light", "tof", "action"]
    score: float | None = Field(None, ge=0.0, le=1.0)


class VerifyIn(_Strict):
    request_id: str = Field(min_length=1, max_length=64)
    template_id: str = Field(min_length=1, max_length=1024)
    capture: str = Field(min_length=1, max_length=400_000)
    liveness: Liveness | None = None


def sensor_noise(image: bytes) -> float:
    """The median absolute Laplacian of the capture's grey levels (a sample of at most ~128×128 pixels): near 0
    for a smooth still image, several grey levels for a camera's live frame."""
    _, _, rows = decode_grey(image)
    height, width = len(rows), len(rows[0])
    step = max(1, max(width, height) // 128)
    values = sorted(abs(rows[y][x] - (rows[y - 1][x] + rows[y + 1][x] + rows[y][x - 1] + rows[y][x + 1]) / 4)
                    for y in range(1, height - 1, step) for x in range(1, width - 1, step))
    return values[len(values) // 2] if values else 0.0


class SandboxState:
    def __init__(self, key: bytes, knobs: Knobs, seed: int | None) -> None:
        self.key = key
        self.knobs = knobs
        self.enrolled = 0
        self.random = random.Random(seed)
        self.calls = 0


def create_app(key: bytes | str, *, latency_ms: int = 0, error_rate: float = 0.0, force_mismatch: bool = False,
               threshold: float = 0.80, noise_threshold: float = 2.0, replay_similarity: float = 0.9999, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="yibao SANDBOX face verifier (not a real recognition service)", version="1")
    state = SandboxState(key.encode() if isinstance(key, str) else key,
                         Knobs(latency_ms=latency_ms, error_rate=error_rate, force_mismatch=force_mismatch,
                               threshold=threshold, noise_threshold=noise_threshold, replay_similarity=replay_similarity), seed)
    app.state.sandbox = state

    def signed(payload: dict[str, Any], status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(body, status_code=status, media_type="application/json",
                        headers={signing.HEADER: signing.sign(state.key, body)})

    def error(status: int, code: str, message: str, request_id: str | None = None) -> Response:
        return signed({"request_id": request_id, "error": {"code": code, "message": message}}, status)

    async def admit(request: Request, model: type[BaseModel]) -> tuple[BaseModel | None, Response | None]:
        """Latency, injected errors, the request signature and the body, in that order."""
        state.calls += 1
        body = await request.body()
        if state.knobs.latency_ms:
            await asyncio.sleep(state.knobs.latency_ms / 1000)
        if state.knobs.error_rate and state.random.random() < state.knobs.error_rate:
            return None, error(503, "sandbox_injected_error", "injected failure (error_rate knob)")
        if not signing.valid(state.key, body, request.headers.get(signing.HEADER)):
            return None, error(401, "bad_signature", "the request signature is missing or wrong")
        try:
            return model.model_validate_json(body), None
        except ValidationError as exc:
            first = exc.errors()[0]
            return None, error(422, "invalid_request", f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}")

    def features(capture: str, request_id: str) -> tuple[list[float] | None, Response | None]:
        try:
            return feature_vector(decode_capture(capture)), None
        except CaptureError as exc:
            return None, error(422, "bad_capture", str(exc), request_id)

    def live(capture: str, score: float) -> bool:
        """The sandbox's liveness rule (module docstring): sensor noise, and not the enrolled image again."""
        try:
            noise = sensor_noise(decode_capture(capture))
        except (CaptureError, ImageError):
            return False
        return noise >= state.knobs.noise_threshold and score < state.knobs.replay_similarity

    @app.post("/templates", status_code=201, summary="Enrol a reference template from a capture")
    async def enrol(request: Request) -> Response:
        req, failure = await admit(request, TemplateIn)
        if failure:
            return failure
        assert isinstance(req, TemplateIn)
        vector, failure = features(req.capture, req.request_id)
        if failure:
            return failure
        template_id = seal_template(state.key, vector)  # type: ignore[arg-type]
        state.enrolled += 1
        return signed({"request_id": req.request_id, "template_id": template_id}, 201)

    @app.post("/verify", summary="Compare a capture 1:1 with a template; decide from the capture whether it is live")
    async def verify(request: Request) -> Response:
        req, failure = await admit(request, VerifyIn)
        if failure:
            return failure
        assert isinstance(req, VerifyIn)
        reference = open_template(state.key, req.template_id)
        if reference is None:
            return error(404, "unknown_template", "no such template", req.request_id)
        vector, failure = features(req.capture, req.request_id)
        if failure:
            return failure
        knobs = state.knobs
        alike = similarity(reference, vector)  # type: ignore[arg-type]
        score = round(alike, 4)
        match = score >= knobs.threshold and not knobs.force_mismatch
        # Decided here, from the capture: the caller's liveness claim is not an input to it.
        liveness = "pass" if live(req.capture, alike) else "fail"
        return signed({"request_id": req.request_id, "template_id": req.template_id, "match": match, "similarity": score,
                       "threshold": knobs.threshold, "liveness": liveness,
                       "liveness_method": req.liveness.method if req.liveness else "capture_analysis", "forced_mismatch": knobs.force_mismatch})

    @app.get("/knobs", summary="Current knobs")
    async def get_knobs() -> dict[str, Any]:
        return state.knobs.model_dump()

    @app.put("/knobs", summary="Change knobs (only the fields given)")
    async def put_knobs(patch: KnobsPatch) -> dict[str, Any]:
        state.knobs = state.knobs.model_copy(update=patch.model_dump(exclude_none=True))
        return state.knobs.model_dump()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "enrolled": state.enrolled}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the SANDBOX face verifier.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    args = parser.parse_args(argv)
    key = os.environ.get("YIBAO_FACE_KEY")
    if not key:
        parser.error("set YIBAO_FACE_KEY to the key shared with the platform")
    uvicorn.run(create_app(key), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
