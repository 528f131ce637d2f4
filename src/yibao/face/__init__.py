"""Face verification: the client the platform uses (`FaceVerifier`), signed both ways, and the image
reading (JPEG and PNG through Pillow) and features it shares with the sandbox verifier (yibao.sandbox.face).

`verifier_from_env` builds the production verifier from YIBAO_FACE_URL and YIBAO_FACE_KEY; the
composition root puts it on the platform, whose `Context.verifier()` refuses with 503 when there is none.
"""

from __future__ import annotations

import os

from yibao.face.client import FaceUnavailable, FaceVerifier, Verification

__all__ = ["FaceUnavailable", "FaceVerifier", "Verification", "verifier_from_env"]


def verifier_from_env() -> FaceVerifier | None:
    url, key = os.environ.get("YIBAO_FACE_URL"), os.environ.get("YIBAO_FACE_KEY")
    timeout = float(os.environ.get("YIBAO_FACE_TIMEOUT", "5"))
    return FaceVerifier(url, key, timeout=timeout) if url and key else None
