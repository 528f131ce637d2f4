"""The sandbox face verifier as a real HTTP server on 127.0.0.1, for tests that need face checks.

Fixtures:
- ``face_sandbox`` (session): the running server — ``.url``, ``.key``, ``.state`` (its knobs);
- ``face_verifier``: a ``FaceVerifier`` client for it, with the knobs reset to their defaults.

Registered for every test by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass

import pytest

from tests.support.channels import CLIENT_TIMEOUT_S

FACE_KEY = "test-face-key-shared-with-the-platform"


def png_bomb(width: int, height: int) -> bytes:
    """A PNG declaring width×height grey pixels whose data is a few hundred bytes of zeros (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = zlib.compress(bytes(200_000), 9)  # the start of the zeros; a decoder would go on inflating for gigabytes
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


@dataclass
class FaceSandbox:
    url: str
    key: str
    state: object  # yibao.face.sandbox.SandboxState

    def reset(self) -> None:
        from yibao.sandbox.face import Knobs

        self.state.knobs = Knobs()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def face_sandbox():
    import uvicorn

    from yibao.sandbox.face import create_app

    app = create_app(FACE_KEY, seed=7)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="face-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the face sandbox did not start")
        time.sleep(0.01)
    yield FaceSandbox(f"http://127.0.0.1:{port}", FACE_KEY, app.state.sandbox)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def face_verifier(face_sandbox):
    from yibao.face import FaceVerifier

    face_sandbox.reset()
    yield FaceVerifier(face_sandbox.url, face_sandbox.key, timeout=CLIENT_TIMEOUT_S)
    face_sandbox.reset()
