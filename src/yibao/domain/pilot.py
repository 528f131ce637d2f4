"""Pilot governance rules (seed 002, docs/governance.md): which payment modes an agreement covers, its one-year term,
and whether it lets an institution take a payment of a mode on a day. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from yibao.domain.errors import Forbidden, InputError

MODES = ("onecode", "face", "mobile", "credit")  # 一码付, 刷脸付, 移动支付, 信用付 — the "mobile-mode" payments
MODE_NAMES = {"onecode": ("一码付", "one-code payment"), "face": ("刷脸支付", "face payment"), "mobile": ("移动支付", "mobile payment"),
              "credit": ("信用支付", "credit payment")}


def mode_of_method(method: str) -> str:
    """The pilot mode a payment order's method is: a wallet's medical-insurance order (`medins`) is a mobile payment."""
    return "mobile" if method == "medins" else method


RENEW_WINDOW = timedelta(days=60)  # [guess] an agreement may be renewed from two months before it ends


def parse_modes(value: object, field: str = "modes") -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise InputError(field, "required", "请选择至少一种支付方式（onecode、face、mobile、credit）", "name at least one of onecode, face, mobile, credit")
    modes = []
    for m in items:
        m = str(m).strip()
        if m not in MODES:
            raise InputError(field, "invalid_mode", f"支付方式应为 onecode、face、mobile、credit 之一：{m}", f"must be one of onecode, face, mobile, credit: {m!r}")
        if m not in modes:
            modes.append(m)
    return tuple(m for m in MODES if m in modes)


def term(starts_on: date) -> date:
    """The last day of a one-year term starting ``starts_on`` (29 February starts end on 27 February)."""
    try:
        anniversary = starts_on.replace(year=starts_on.year + 1)
    except ValueError:
        anniversary = date(starts_on.year + 1, 2, 28)
    return anniversary - timedelta(days=1)


@dataclass(frozen=True)
class Agreement:
    id: str
    applicant: str
    institution_id: str | None
    region: str
    modes: tuple[str, ...]
    starts_on: date
    expires_on: date
    status: str  # active | suspended | superseded
    status_reason: str | None

    def state_on(self, day: date) -> str:
        """active | suspended | expired | not_started | superseded."""
        if self.status != "active":
            return self.status
        if day > self.expires_on:
            return "expired"
        if day < self.starts_on:
            return "not_started"
        return "active"


def refusal(agreement: Agreement | None, mode: str, day: date, institution_id: str) -> Forbidden | None:
    """Why this institution may not take a payment of ``mode`` today, naming the agreement; None: it may."""
    zh_mode, en_mode = MODE_NAMES[mode]
    if agreement is None:
        return Forbidden("pilot_agreement", "no_pilot_agreement", f"本机构（{institution_id}）未签订医保移动支付试点协议，不能办理{zh_mode}；可办理窗口结算",
                         f"institution {institution_id} has no mobile-payment pilot agreement: no {en_mode}; settle at the counter")
    state = agreement.state_on(day)
    if state == "expired":
        return Forbidden("pilot_agreement", "pilot_agreement_expired",
                         f"试点协议 {agreement.id} 已于 {agreement.expires_on.isoformat()} 到期，不能办理{zh_mode}；请续签，窗口结算不受影响",
                         f"pilot agreement {agreement.id} expired on {agreement.expires_on.isoformat()}: no {en_mode} until it is renewed; "
                         "counter settlement goes on")
    if state == "suspended":
        why = f"（{agreement.status_reason}）" if agreement.status_reason else ""
        return Forbidden("pilot_agreement", "pilot_agreement_suspended",
                         f"试点协议 {agreement.id} 已被医保经办机构暂停{why}，不能办理{zh_mode}；窗口结算不受影响",
                         f"pilot agreement {agreement.id} is suspended by the agency: no {en_mode}; counter settlement goes on")
    if state == "not_started":
        return Forbidden("pilot_agreement", "pilot_agreement_not_started", f"试点协议 {agreement.id} 自 {agreement.starts_on.isoformat()} 起生效",
                         f"pilot agreement {agreement.id} takes effect on {agreement.starts_on.isoformat()}")
    if mode not in agreement.modes:
        return Forbidden("pilot_agreement", "mode_not_agreed", f"试点协议 {agreement.id} 不含{zh_mode}", f"pilot agreement {agreement.id} does not cover {en_mode}")
    return None
