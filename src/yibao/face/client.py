"""The platform's face-verifier client: async HTTP, signed both ways, every answer checked.

Call it from async code outside any database unit of work: a face check takes a network round
trip, and no transaction may wait on one.

Liveness is the verifier's finding, from the capture, in its signed answer: what a caller (a hospital's
terminal, a page) claims about liveness is never forwarded as evidence — only the name of the sensor it
used goes along, and its score stops here.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from yibao.crypto import signed_http
from yibao.domain.errors import Conflict, InputError, Unavailable, YibaoError
from yibao.face import signing
from yibao.face.features import CaptureError, decode_capture
from yibao.face.image import ImageError, check_image


class FaceUnavailable(Unavailable):
    """The verifier did not give a trustworthy answer (down, slow, failing, or a bad signature)."""


@dataclass(frozen=True)
class Verification:
    match: bool
    similarity: float
    threshold: float
    liveness: str  # pass | fail
    liveness_method: str

    @property
    def verified(self) -> bool:
        return self.match and self.liveness == "pass"


def check_capture(capture: str) -> None:
    """Refuse here, from its header, a capture that is no JPEG or PNG or is too large, before it costs a call to the verifier."""
    try:
        data = decode_capture(capture)
    except CaptureError as exc:
        raise InputError("capture", "bad_capture", "人脸图像应为base64编码的JPEG或PNG图像，且不超过256KB", str(exc)) from None
    try:
        check_image(data)
    except ImageError as exc:
        raise InputError("capture", exc.code, f"人脸图像（capture）：{exc.zh}", f"capture: {exc.en}") from None


def _unavailable(code: str, en: str) -> FaceUnavailable:
    return FaceUnavailable("face_verifier", code, "人脸核验服务暂不可用，请稍后重试", f"the face verifier is unavailable: {en}")


class FaceVerifier:
    def __init__(self, base_url: str, key: bytes | str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key.encode() if isinstance(key, str) else key
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:  # never show the key
        return f"FaceVerifier({self.base_url!r})"

    async def enrol(self, capture: str) -> str:
        """Enrol a reference template from a capture (base64 JPEG or PNG); returns the verifier's template id."""
        check_capture(capture)
        return str((await self._call("/templates", {"capture": capture}))["template_id"])

    async def verify(self, template_id: str, capture: str, liveness: dict[str, Any] | None = None) -> Verification:
        """Compare a capture 1:1 with a template; the verifier decides from the capture whether it is live.
        ``liveness``: the terminal's claim ({method, score}); only its method (the sensor) is passed on."""
        check_capture(capture)
        payload: dict[str, Any] = {"template_id": template_id, "capture": capture}
        if liveness and isinstance(liveness.get("method"), str):
            payload["liveness"] = {"method": liveness["method"]}
        data = await self._call("/verify", payload)
        if data.get("template_id") != template_id:
            raise _unavailable("face_verifier_mismatched_answer", "the answer names another template")
        return Verification(bool(data["match"]), float(data["similarity"]), float(data["threshold"]), str(data["liveness"]),
                            str(data["liveness_method"]))

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request_id = secrets.token_hex(16)
        body = json.dumps({"request_id": request_id, **payload}, separators=(",", ":")).encode()
        resp, data = await signed_http.post(self.base_url, path, body, key=self._key, header=signing.HEADER, timeout=self._timeout,
                                            transport=self._transport, fail=lambda code, en: _unavailable(f"face_verifier_{code}", en))
        if resp.is_success and data.get("request_id") != request_id:
            raise _unavailable("face_verifier_mismatched_answer", "the answer is for another request")
        if not resp.is_success:
            raise _refusal(resp.status_code, data.get("error") or {})
        return data


def _refusal(status: int, err: dict[str, Any]) -> YibaoError:
    code, message = str(err.get("code", "")), str(err.get("message", ""))
    if status == 422 and code == "bad_capture":
        return InputError("capture", "bad_capture", "人脸图像无法使用（须为清晰的JPEG或PNG图像）", f"the capture cannot be used: {message}")
    if status == 404 and code == "unknown_template":
        return Conflict("face_template", "face_template_unknown", "人脸模板已失效，请到经办机构重新采集",
                        "the enrolled face template is no longer known to the verifier; enrol the face again at the agency")
    return _unavailable(f"face_verifier_{code or status}", message or f"HTTP {status}")
