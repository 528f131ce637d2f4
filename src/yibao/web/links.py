"""Where the cashier's pages send the reader: a visit page with its account choice kept."""

from __future__ import annotations

from urllib.parse import urlencode

from yibao.web.forms import Form


def visit_url(visit_id: str, account: str, payer_psn_no: str | None, **extra: str) -> str:
    query = {"account": account, **({"payer_psn_no": payer_psn_no} if payer_psn_no else {}), **extra}
    return f"/cashier/visits/{visit_id}?{urlencode(query)}"


def visit_back(visit_id: str, form: Form) -> str:
    """Back to the visit a form was posted from, with its account choice."""
    return visit_url(visit_id, form.get("account") or "self", form.get("payer_psn_no") or None)
