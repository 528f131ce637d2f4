"""A hospital's callback endpoint on 127.0.0.1 for tests: records every request; answers what it is told to."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.channels import serve_in_thread


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class HospitalEndpoint:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to answer next, in order; then 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    _thread: Any = None
    _sock: Any = None

    def start(self) -> HospitalEndpoint:
        async def receive(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
                status = self.answers.pop(0) if self.answers else 200
            return Response(b"ok" if status < 300 else b"busy", status_code=status)

        app = Starlette(routes=[Route("/yibao/callback", receive, methods=["POST"])])
        base, self._server, self._thread, self._sock = serve_in_thread(app, "hospital-callback")
        self.url = f"{base}/yibao/callback"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
