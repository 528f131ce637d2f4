"""Run the app with uvicorn in one or more worker processes sharing one listening socket.

Why not uvicorn's own `workers=`: it creates the listener as socket.socket(family), whose proto
is 0, and asyncio sets TCP_NODELAY only on accepted sockets whose proto is IPPROTO_TCP — so every
response waited ~40 ms on Nagle and delayed ACKs (measured by bench/api.py). Here the listener is
created with IPPROTO_TCP and the workers are forked from this process, inheriting it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

import uvicorn


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _run_worker(sock: socket.socket, factory: str) -> None:
    config = uvicorn.Config(factory, factory=True, log_level="info", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve(host: str, port: int, workers: int, factory: str) -> None:
    """Serve the app ``factory`` ("module:function", called once per worker process) on host:port."""
    sock = _listener(host, port)
    if workers == 1 or not hasattr(os, "fork"):
        _run_worker(sock, factory)
        return
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own event loop, database engine and connections
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _run_worker(sock, factory)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, _frame) -> None:  # noqa: ANN001
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    remaining = set(children)
    while remaining:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        remaining.discard(pid)
        if code and remaining:  # a worker died: stop the others rather than serve at reduced strength silently
            print(f"yibao: worker {pid} exited ({code}); stopping", file=sys.stderr)
            status = 1
            stop(signal.SIGTERM, None)
    sys.exit(status)
