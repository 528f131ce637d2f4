"""Text messages: the client the platform sends through (`SmsGateway`), signed both ways.

`gateway_from_env` builds the production gateway from YIBAO_SMS_URL and YIBAO_SMS_KEY (YIBAO_SMS_TIMEOUT,
seconds, default 5); the composition root puts it on the platform, whose `Context.texter()` refuses with
503 when there is none — the log-in then says SMS is unavailable rather than pretending it sent a code.
The demo's gateway is the SANDBOX one (yibao.sandbox.sms), reached over HTTP like a real one.
"""

from __future__ import annotations

import os

from yibao.sms.client import SmsGateway, SmsUnavailable

__all__ = ["SmsGateway", "SmsUnavailable", "gateway_from_env"]


def gateway_from_env() -> SmsGateway | None:
    url, key = os.environ.get("YIBAO_SMS_URL"), os.environ.get("YIBAO_SMS_KEY")
    timeout = float(os.environ.get("YIBAO_SMS_TIMEOUT", "5"))
    return SmsGateway(url, key, timeout=timeout) if url and key else None
