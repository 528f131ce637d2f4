"""Who is using a page, and how a form post runs its change.

Each area has its own session cookie (security.py), a random token whose hash is stored server-side:
the holder's session, the cashier's and the operator's console session — each looked up on every
request, so a log-out ends it at once, and a suspended institution or a removed operator token stops
working at the next request. The log-in posts count wrong credentials per client address (and per
institution) like the API does (`log_in_institution`, `log_in_operator`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, YibaoError
from yibao.runtime.clients import client_address
from yibao.runtime.platform import Platform
from yibao.services.access import sessions
from yibao.services.agency import institutions
from yibao.services.agency.institutions import Institution
from yibao.services.payments import history as payment_history
from yibao.services.people import persons as people
from yibao.web import once, render, security
from yibao.web.errors import LoginRequired
from yibao.web.forms import Form


@dataclass(frozen=True)
class Goto:
    """What a form's work answers to go somewhere other than its `back` page on success."""

    path: str


@dataclass(frozen=True)
class Who:
    area: str  # app | cashier | admin
    principal: str  # person id | institution id | operator name
    region: str
    cookie: str  # the session cookie's value; the CSRF token derives from it
    label: str  # shown in the header
    institution: Institution | None = None
    waiting: Any = None  # /app: what waits for the holder (payments.history.Waiting): the 待支付 badge, the code screen's notice

    @property
    def actor(self) -> str:
        audience = {"app": "patient", "cashier": "his", "admin": "operator"}[self.area]
        return f"{audience}:{self.principal}"


def platform(request: Request) -> Platform:
    return request.app.state.platform


async def holder(request: Request) -> Who:
    p = platform(request)
    token = request.cookies.get(security.SESSION_COOKIES["app"], "")
    now = p.now()

    def load(conn: Connection) -> tuple[sessions.Holder, str, Any] | None:
        found = sessions.holder_of(conn, token, now)
        if found is None:
            return None
        return (found, people.masked_view(people.require(conn, found.person_id), p.keyring)["psn_name"],
                payment_history.waiting(conn, found.person_id, now))

    found = await p.run(load, write=False) if token else None
    if found is None:
        raise LoginRequired("app")
    (person_id, region), name, waiting = found
    return Who("app", person_id, region, token, name, waiting=waiting)


async def cashier(request: Request) -> Who:
    p = platform(request)
    cookie = request.cookies.get(security.SESSION_COOKIES["cashier"], "")
    now = p.now()

    def load(conn: Connection) -> Institution | None:
        found = sessions.console_of(conn, cookie, "cashier", now)
        return institutions.get(conn, found.principal) if found else None

    inst = await p.run(load, write=False) if cookie else None
    if inst is None or inst.status != "active":
        raise LoginRequired("cashier")
    return Who("cashier", inst.id, inst.region, cookie, inst.name, inst)


async def operator(request: Request) -> Who:
    p = platform(request)
    cookie = request.cookies.get(security.SESSION_COOKIES["admin"], "")
    now = p.now()
    found = await p.run(lambda c: sessions.console_of(c, cookie, "admin", now), write=False) if cookie else None
    if found is None or found.principal not in p.operator_tokens.values():
        raise LoginRequired("admin")
    return Who("admin", found.principal, "000000", cookie, found.principal)


async def log_in_console(request: Request, area: str, credential: str) -> tuple[str, str]:
    """A cashier's (``area`` cashier: an institution credential) or an operator's (admin: a token) log-in post:
    the credential checked and counted as the API counts it, then a console session opened. Returns the cookie's
    token and the path the cookie is for; a refusal is raised (its count committed)."""
    p = platform(request)
    address = client_address(request)
    if area == "cashier":
        inst = await p.institution(credential, address, field="credential")
        principal, region = inst.id, inst.region
    else:
        principal, region = await p.operator(credential, address, field="token"), "000000"
    now = p.now()
    token = await p.run(lambda c: sessions.open_console(c, now, area=area, principal=principal, region=region))
    return token, security.AREA_PATHS[area]


async def log_out_console(request: Request, area: str) -> None:
    """Log out of a console: its session row is deleted, so the cookie stops working at once."""
    p = platform(request)
    token = request.cookies.get(security.SESSION_COOKIES[area], "")
    if token:
        await p.run(lambda c: sessions.end_console(c, token))


async def act(request: Request, who: Who, form: Form, work: Callable[[Connection], Any], *, back: str,
              ok: tuple[str, ...] | None = None, keep: tuple[str, ...] = ()) -> RedirectResponse:
    """Run a form's change once per rendered form (nonce), then 303 to the page to show next.

    On a refusal the reader goes back to ``back`` with the refusal in words and the fields in
    ``keep`` filled in again. ``work`` may answer a `Goto` to go elsewhere on success; anything else
    it returns (the service's answer) is not kept.
    """
    p = platform(request)

    def outcome_of(conn: Connection) -> once.Outcome:
        result = work(conn)
        return {"to": result.path} if isinstance(result, Goto) else {}

    try:
        unit = once.unit(scope=f"web:{who.area}:{who.principal}", nonce=form.nonce, path=request.url.path, region=who.region,
                         now=p.now(), work=outcome_of)
        outcome, _ = await p.run(unit)
    except YibaoError as exc:
        return render.redirect(request, back, error=exc, values=form.values(*keep))
    return render.redirect(request, outcome.get("to", back), ok=ok)


async def act_flow(request: Request, who: Who, form: Form, call: Callable[[], Awaitable[Any]], *, back: str,
                   ok: tuple[str, ...] | None = None, keep: tuple[str, ...] = ()) -> RedirectResponse:
    """Like `act`, for a change made of several units with an institution called between them (a payment).

    The form's nonce is claimed first (its own unit); ``call`` runs the flow; its outcome — where to
    go, what to say, or the refusal in words — is stored under the nonce, so the same form sent again
    is answered the same way and runs nothing. ``call`` may answer a `Goto` and, with it, a message
    (``(Goto, (zh, en))``) that depends on how the flow ended.
    """
    p = platform(request)
    scope = f"web:{who.area}:{who.principal}"
    try:
        replay = await p.run(once.claim(scope=scope, nonce=form.nonce, path=request.url.path, region=who.region, now=p.now()))
    except YibaoError as exc:
        return render.redirect(request, back, error=exc, values=form.values(*keep))
    refused: YibaoError | None = None  # this answer's own refusal: its Retry-After goes along (a replay has only the words)
    if replay is None:
        try:
            result = await call()
            said = ok
            if isinstance(result, tuple):
                result, said = result
            outcome: once.Outcome = {"to": result.path if isinstance(result, Goto) else back, "ok": list(said) if said else None}
        except YibaoError as exc:
            refused = exc
            outcome = {"to": back, "error": {"field": exc.field, "code": exc.code, "zh": exc.message_zh, "en": exc.message_en},
                       "values": form.values(*keep)}
        await p.run(once.record(scope=scope, nonce=form.nonce, outcome=outcome))
    else:
        outcome = replay
    if outcome.get("error"):
        e = outcome["error"]
        return render.redirect(request, outcome["to"], error=refused or Conflict(e["field"], e["code"], e["zh"], e["en"]),
                               values=outcome.get("values"))
    said = outcome.get("ok")
    return render.redirect(request, outcome["to"], ok=tuple(said) if said else None)
