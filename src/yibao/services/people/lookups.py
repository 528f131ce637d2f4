"""Look-ups of people by number at an institution (1101, and a card read with its PIN): throttled, and watched.

Every look-up is a `person_lookups` row (keyed hashes only: neither the number nor its block is stored).
- Throttle (the platform's one attempt rule, domain/attempts.py): per institution, at most PER_INSTITUTION
  look-ups and MISSES_PER_INSTITUTION misses (no one found, or a card's PIN wrong) within WINDOW; over
  either, look-ups are refused unseen (429 with Retry-After) until the window lets one more in. A refused
  look-up is not recorded, so a locked institution does not extend its own lock.
- Watch (domain/lookups.py): when the window's look-ups show an enumeration pattern, an audited alert
  `pii.lookup_enumeration` is appended, once per institution and window.
The caller records a look-up in the same unit as its answer and commits a miss before saying it
(raising would roll the row back: unlimited guessing).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import select, true
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain import lookups as rule
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import TooManyAttempts
from yibao.services.access import attempts
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.store.tables import person_lookups as L

WINDOW = timedelta(minutes=10)
# [G: guessed] A busy counter looks up a few people a minute, most of them found; scans of the payment code
# (the usual way in) are not look-ups. Well above that, far below walking a city's card numbers.
PER_INSTITUTION = AttemptLimit(300, WINDOW)
MISSES_PER_INSTITUTION = AttemptLimit(20, WINDOW)
OUTCOMES = ("found", "not_found", "wrong_pin")


def _block_hash(keyring: Keyring, number: str) -> str:
    return hmac.new(keyring.purpose_key("person lookup block v1"), rule.block_of(number).encode(), hashlib.sha256).hexdigest()


def throttle(conn: Connection, now: datetime, institution_id: str) -> None:
    """Raise `too_many_lookups` (429, Retry-After) while the institution is over a limit; nothing is recorded."""
    waits = [PER_INSTITUTION.retry_after(attempts.failures(conn, L, PER_INSTITUTION, now, L.c.institution_id == institution_id,
                                                           failed=true()), now),
             MISSES_PER_INSTITUTION.retry_after(attempts.failures(conn, L, MISSES_PER_INSTITUTION, now, L.c.institution_id == institution_id,
                                                                  failed=L.c.outcome != "found"), now)]
    seconds = max((w for w in waits if w is not None), default=None)
    if seconds is not None:
        raise TooManyAttempts("credential_no", "too_many_lookups", f"本机构查询参保人过于频繁，请{seconds}秒后再试",
                              f"too many look-ups of insured people from this institution; try again in {seconds} s", seconds)


def record(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, credential_type: str, number: str,
           outcome: str, actor: str) -> None:
    """Record one look-up, then watch the institution's window: an enumeration pattern is audited (once per window)."""
    assert outcome in OUTCOMES
    conn.execute(L.insert().values(region=institution.region, institution_id=institution.id, credential_type=credential_type,
                                   outcome=outcome, number_hash=keyring.lookup_hash(number), block_hash=_block_hash(keyring, number),
                                   alert=False, created_at=now))
    rows = conn.execute(select(L.c.id, L.c.number_hash, L.c.block_hash, L.c.outcome, L.c.alert).where(
        L.c.institution_id == institution.id, L.c.created_at > now - rule.WINDOW)).all()
    if any(r.alert for r in rows):
        return  # alerted within this window already
    signs = rule.signs(rule.Looked(r.number_hash, r.block_hash, r.outcome == "found") for r in rows)
    if not signs.enumeration:
        return
    newest = max(r.id for r in rows)
    conn.execute(L.update().where(L.c.id == newest).values(alert=True))
    audit.append(conn, region=institution.region, actor=actor, action="pii.lookup_enumeration", subject=institution.id,
                 detail={"institution": institution.id, "lookups": len(rows), "misses": signs.misses, "neighbours": signs.neighbours,
                         "window_seconds": int(rule.WINDOW.total_seconds())}, now=now)
