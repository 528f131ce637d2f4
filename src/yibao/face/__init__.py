"""Face verification: the client the platform uses, a sandbox verifier service, sample faces.

`install(app)` puts a `FaceVerifier` on `app.state.face_verifier` (from YIBAO_FACE_URL and
YIBAO_FACE_KEY unless one is given) and answers its outages with 503 in the API's error shape.
"""

from __future__ import annotations

import os
from typing import Any

from yibao.face.client import FaceUnavailable, FaceVerifier, Verification

__all__ = ["FaceUnavailable", "FaceVerifier", "Verification", "install", "verifier_from_env", "verifier_of"]


def verifier_from_env() -> FaceVerifier | None:
    url, key = os.environ.get("YIBAO_FACE_URL"), os.environ.get("YIBAO_FACE_KEY")
    timeout = float(os.environ.get("YIBAO_FACE_TIMEOUT", "5"))
    return FaceVerifier(url, key, timeout=timeout) if url and key else None


def install(app: Any, verifier: FaceVerifier | None = None) -> None:
    """Give a FastAPI app its face verifier and the 503 answer for verifier outages."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from yibao.api.errors import error_body

    app.state.face_verifier = verifier or verifier_from_env()

    async def unavailable(request: Request, exc: FaceUnavailable) -> JSONResponse:
        rid = getattr(request.state, "request_id", "")
        return JSONResponse(error_body(exc.code, exc.field, exc.message_zh, exc.message_en, rid), status_code=503,
                            headers={"Retry-After": "5"})

    app.add_exception_handler(FaceUnavailable, unavailable)


def verifier_of(app: Any) -> FaceVerifier:
    verifier = getattr(app.state, "face_verifier", None)
    if verifier is None:
        raise FaceUnavailable("face_verifier", "face_verifier_not_configured", "人脸核验服务未配置",
                              "no face verifier is configured (YIBAO_FACE_URL, YIBAO_FACE_KEY)")
    return verifier
