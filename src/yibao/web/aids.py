"""The demo's aids as the pages see them: an object the composition root puts on the app (the sandbox
wing builds it); the pages never import the demo world itself."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import Request

from yibao.domain.errors import Forbidden, NotFound


class DemoAids(Protocol):
    """What the pages show only in the demo, given by the composition root (the sandbox wing's
    `yibao.sandbox.aids.DemoAids`); None in production, where those pages and sections are absent."""

    samples: tuple[str, ...]  # the cashier's face-capture samples
    sms_outbox_url: str  # where the SANDBOX SMS gateway shows what it "sent" (the platform keeps no text)

    def login_people(self) -> list[dict[str, str]]: ...  # name, phone, id_number, role_zh, role_en

    def login_faces(self) -> list[dict[str, str]]: ...  # value, name, kind (live | photo)

    def login_capture(self, choice: str | None) -> tuple[str, dict[str, Any]]: ...  # (capture, liveness)

    def sample_face(self, holder_name: str, sample: str) -> tuple[str, int, dict[str, Any]]: ...  # (face, day, liveness)

    def face_png(self, name: str, day: int) -> bytes: ...

    def capture(self, name: str, day: int) -> str: ...


def aids(request: Request) -> DemoAids | None:
    return getattr(request.app.state, "demo_aids", None)


def require(request: Request) -> DemoAids:
    """The aids, or 404: a demo-only page does not exist in production."""
    found = aids(request)
    if found is None:
        raise NotFound("", "not_found", "页面不存在", "not found")
    return found


def require_samples(request: Request) -> DemoAids:
    """The aids for the cashier's face samples, or 403 naming the rule."""
    found = aids(request)
    if found is None:
        raise Forbidden("sample", "face_samples_demo_only", "示例人脸仅用于演示，刷脸支付请使用人脸采集终端",
                        "the sample faces are for the demo only: pay by face at a face terminal")
    return found
