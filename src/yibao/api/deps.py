"""Who is calling the API: the platform, and the caller a bearer credential names (an institution, a
holder's session or an operator). A wrong institution credential or operator token is counted per client
address (and per institution); too many are refused with Retry-After (services/access/credentials.py)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yibao.domain.errors import Unauthorized
from yibao.runtime.clients import client_address
from yibao.runtime.platform import Platform
from yibao.services.access import sessions
from yibao.services.agency.institutions import Institution


async def platform(request: Request) -> Platform:
    # async on purpose: FastAPI runs a plain `def` dependency on the thread pool (a thread hop per request).
    return request.app.state.platform


bearer = HTTPBearer(auto_error=False, description="Bearer token: an institution credential, a holder's session or an operator token")


def _token(creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or not creds.credentials:
        raise Unauthorized("Authorization", "missing_credentials", "缺少 Authorization: Bearer 凭证", "missing Authorization: Bearer credentials")
    return creds.credentials


@dataclass(frozen=True)
class Caller:
    audience: str  # his | patient | operator
    principal: str  # institution id | person id | operator name
    region: str | None
    institution: Institution | None = None

    @property
    def scope(self) -> str:
        return f"{self.audience}:{self.principal}"

    @property
    def actor(self) -> str:
        return f"{self.audience}:{self.principal}"


async def institution_caller(request: Request, p: Platform = Depends(platform),
                             creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """HIS credentials: `Authorization: Bearer <fixmedins_code>.<secret>`."""
    inst = await p.institution(_token(creds), client_address(request))
    return Caller("his", inst.id, inst.region, inst)


async def patient_caller(p: Platform = Depends(platform), creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """A holder's session token from `POST /api/v1/patient/sessions`."""
    token, now = _token(creds), p.now()
    holder = await p.run(lambda c: sessions.holder_of(c, token, now), write=False)
    if holder is None:
        raise Unauthorized("Authorization", "session_expired", "登录已失效，请重新登录", "the session is invalid or expired; log in again")
    return Caller("patient", holder.person_id, holder.region)


async def operator_caller(request: Request, p: Platform = Depends(platform),
                          creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    name = await p.operator(_token(creds), client_address(request))
    return Caller("operator", name, None)
