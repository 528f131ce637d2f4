"""The payment-flow context of a request: the platform's units, clock, keys and connectors, plus the
app's credit-line banks (for payments whose cash comes from a credit line)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from yibao.api.context import Platform


def payment_context(p: Platform, request: Request, actor: str) -> Any:
    from yibao.services import credit

    ctx = p.payments(actor)
    ctx.credit = credit.CreditContext(p.run, p.now, p.keyring, getattr(request.app.state, "credit_banks", {}))
    return ctx
