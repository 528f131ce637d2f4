"""Who is at the other end: the client's address, for the limits counted per address (SMS log-in codes,
institutions' and operators' credentials: services/access).

It is the connection's peer (`request.client.host`). Behind a reverse proxy every connection comes from the
proxy, so then — and only for a peer listed in YIBAO_TRUSTED_PROXIES (comma-separated addresses) — the address
is read from `X-Forwarded-For`, the one documented header: from its right end, the first entry that is not
itself a trusted proxy (each proxy appends the address it received the request from; whatever stands left of
that was written by the client and proves nothing). From any other peer the header is ignored.
"""

from __future__ import annotations

import os
from functools import lru_cache

from starlette.requests import HTTPConnection

HEADER = "X-Forwarded-For"


@lru_cache(maxsize=8)
def _trusted(raw: str) -> frozenset[str]:
    return frozenset(a.strip() for a in raw.split(",") if a.strip())


def trusted_proxies() -> frozenset[str]:
    return _trusted(os.environ.get("YIBAO_TRUSTED_PROXIES", ""))


def client_address(request: HTTPConnection) -> str | None:
    """The client's address as this deployment can know it (None when the server cannot tell)."""
    peer = request.client.host if request.client else None
    proxies = trusted_proxies()
    if peer is None or peer not in proxies:
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist(HEADER)).split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in proxies:
            return hop[:64]
    return peer
