"""Institutions' and operators' credentials — the HIS API and the cashier console (`<code>.<secret>`), the admin
API and the admin pages (an operator token): a wrong one costs something.

Every wrong credential is counted per client address and, for an institution, per institution code (the
credential being guessed); `PER_ADDRESS` or `PER_INSTITUTION` failures within the window refuse every
credential — the right one too, so a guess that happens to be right is not told apart — with Retry-After,
until the oldest failure leaves the window. Checking, trying and counting are one unit, one attempt at a time
per subject (`attempts.serialise`): a burst of parallel guesses gets `limit` answers, not one per request.

A lock on an institution code must not shut the institution's own HIS out because a stranger typed its code:
an address where that institution's credential worked within `KNOWN_FOR` is let past the lock on the code
(never past the lock on its own address). A suspended institution's right credential is refused as before and
counts nothing (its HIS retrying is no guess). Operator tokens carry no name to count against: they are counted
per address only — a limit on all operators together would let anyone lock every operator out.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import TooManyAttempts, Unauthorized, YibaoError
from yibao.services.access.attempts import NO_REGION, Counter, serialise, subject_of
from yibao.services.agency import institutions
from yibao.services.agency.institutions import Institution

WINDOW = timedelta(minutes=15)
PER_ADDRESS = Counter("credential:address", AttemptLimit(10, WINDOW))  # wrong credentials of any kind from one client address
PER_INSTITUTION = Counter("credential:institution", AttemptLimit(10, WINDOW))  # wrong secrets given for one institution code
KNOWN_FOR = timedelta(days=30)
KNOWN = Counter("credential_ok:address", AttemptLimit(1, KNOWN_FOR))  # where an institution's credential worked (successes only)
_CODE = re.compile(r"^[A-Za-z0-9]{6,20}$")  # what an admitted institution's code looks like: only those are counted per code


def locked(field: str, wait: int) -> TooManyAttempts:
    minutes = math.ceil(wait / 60)
    return TooManyAttempts(field, "credentials_locked", f"凭证错误次数过多，暂停受理，请{minutes}分钟后再试",
                           f"too many wrong credentials: refused for now; try again in {minutes} min", wait)


def _address(keyring: Keyring, address: str | None) -> str | None:
    return subject_of(keyring, "address", address) if address else None


def _subjects(keyring: Keyring, code: str, address: str | None) -> tuple[str | None, str | None, str | None]:
    """Who a credential's attempt is counted against: the address, the code (when it looks like one), and the pair
    remembered when it works."""
    addr = _address(keyring, address)
    countable = code if _CODE.match(code or "") else None
    known = subject_of(keyring, "known", f"{code}@{address}") if addr and countable else None
    return addr, countable, known


def _locked_out(conn: Connection, now: datetime, addr: str | None, countable: str | None, known: str | None,
                field: str) -> YibaoError | None:
    if addr:
        serialise(conn, PER_ADDRESS.kind, addr)
        wait = PER_ADDRESS.wait(conn, now, addr)
        if wait is not None:
            return locked(field, wait)
    if countable:
        serialise(conn, PER_INSTITUTION.kind, countable)
        wait = PER_INSTITUTION.wait(conn, now, countable)
        if wait is not None and (known is None or KNOWN.seen(conn, now, known, failed=False) is None):
            return locked(field, wait)
    return None


def _failed(conn: Connection, now: datetime, addr: str | None, countable: str | None) -> None:
    if addr:
        PER_ADDRESS.count(conn, now, addr)
    if countable:
        PER_INSTITUTION.count(conn, now, countable)


def _worked(conn: Connection, now: datetime, known: str | None, region: str) -> None:
    if known is not None:
        last = KNOWN.seen(conn, now, known, failed=False)
        if last is None or last <= now - timedelta(days=1):  # one row a day is enough to remember the address
            KNOWN.count(conn, now, known, failed=False, region=region)


def institution(conn: Connection, keyring: Keyring, now: datetime, *, code: str, secret: str, address: str | None,
                field: str = "Authorization") -> Institution | YibaoError:
    """The institution whose credential this is (active), or the refusal — returned, not raised, so that the
    counted failure commits with it."""
    addr, countable, known = _subjects(keyring, code, address)
    refusal = _locked_out(conn, now, addr, countable, known, field)
    if refusal is not None:
        return refusal
    inst = institutions.with_secret(conn, code, secret)
    if inst is None:
        _failed(conn, now, addr, countable)
        return institutions.bad_credentials(field)
    if inst.status != "active":
        return institutions.bad_credentials(field)
    _worked(conn, now, known, inst.region)
    return inst


def gateway_signature(conn: Connection, keyring: Keyring, now: datetime, *, code: str, region: str | None, valid: bool,
                      address: str | None, refusal: YibaoError, field: str = "x-tif-signature") -> YibaoError | None:
    """The national-interface gateway's signature (x-tif-*, checked by the caller, who holds the token) counted as the
    institution's credential: a wrong one (``valid`` False: a bad signature, or a code with no gateway token) is
    counted per address and per code and answered ``refusal``; too many lock both, the right signature too — as
    `institution` does for the REST credential. None: it may pass (``region``: the institution's, to remember the
    address)."""
    addr, countable, known = _subjects(keyring, code, address)
    locked_out = _locked_out(conn, now, addr, countable, known, field)
    if locked_out is not None:
        return locked_out
    if not valid:
        _failed(conn, now, addr, countable)
        return refusal
    _worked(conn, now, known, region or NO_REGION)
    return None


def bad_operator_token(field: str = "Authorization") -> Unauthorized:
    return Unauthorized(field, "bad_credentials", "经办人员凭证无效", "invalid operator token")


def operator(conn: Connection, keyring: Keyring, now: datetime, *, name: str | None, address: str | None,
             field: str = "Authorization") -> str | YibaoError:
    """The operator a token named (``name``, None for a token that names none), or the refusal — returned, so
    that a wrong token's count commits with it."""
    addr = _address(keyring, address)
    if addr:
        serialise(conn, PER_ADDRESS.kind, addr)
        wait = PER_ADDRESS.wait(conn, now, addr)
        if wait is not None:
            return locked(field, wait)
    if name is None:
        if addr:
            PER_ADDRESS.count(conn, now, addr)
        return bad_operator_token(field)
    return name
