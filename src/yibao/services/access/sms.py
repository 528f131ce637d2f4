"""Text messages to holders — log-in codes (sessions.py), credit reminders (services/credit/jobs.py) — go out
through the configured SMS gateway (yibao.sms.SmsGateway; `Context.texter()`, a 503 when there is none; the
demo's is the SANDBOX gateway, yibao.sandbox.sms, reached over HTTP like a real one).

Sending is a call to an outside party: between units of work, never inside one. The platform keeps no copy of
what it sent — no outbox, no text — so a log-in code cannot be read back from it by anyone, operators included.
"""

from __future__ import annotations

from yibao.sms import SmsGateway


async def send(gateway: SmsGateway, *, phone: str, text: str) -> str:
    """Send one message; the gateway's message id (`SmsUnavailable`, a 503, when it did not take it)."""
    return await gateway.send(phone, text)
