"""The payer's password-free agreement (免密协议) at a payment institution, signed by the holder on the institution's
own page — never by the platform, and never during a payment.

    start (unit: a pending row) → start_signing (call: the page's URL or form) → the holder signs on the page
    → the institution's signed notification (`apply_notification`, in the notification's unit) or our query
      (`refresh`: call, then unit) → active

The row is ours from the start (`channel_agreements`, status ``pending``, our out_agreement_no derived from payer,
institution and generation, so starting again is the same agreement; signing again after a termination is the next
generation, under a new number — an institution never signs a terminated agreement's number again) and becomes
``active`` only from a verified notification or the institution's answer to a query — each the one write path
`activate`, idempotent (a resend, a notification after the query, a query after the notification change nothing). A
password-free payment reads only active rows (`cash.agreement_for`); without one it is voided with
`agreement_not_signed` (cash.py), never signed on the fly.

Unbinding ends the agreement at the institution too:

    unbind (unit: the binding unbound, the agreement ``terminating``) → `terminate` (call: WeChat's contract
    termination by plan id + out_contract_code, alipay.user.agreement.unsign, UnionPay's token delete 74/01) →
    ``terminated`` (unit, `terminated`; or the institution's signed termination notification, whichever comes first)

The local unbind never waits for the institution: if it cannot be reached (or does not confirm), the agreement stays
``terminating`` — visible in the agreement's state, never used by a payment — and recovery asks again every round
(`retry_terminations`, recovery.py) until the institution confirms. A ``terminating`` agreement is never activated again;
signing again first ends it (`start`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.base import AgreementRequest, ChannelError, NotFoundAtChannel, Notification, SigningStart, sent_at_kw
from yibao.channels.wire import holder_token
from yibao.crypto.pii import Keyring
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.agency import connectors
from yibao.services.books import audit
from yibao.services.people import bindings
from yibao.store.sql import as_datetime
from yibao.store.tables import channel_agreements as AG
from yibao.store.upsert import insert_ignore

log = logging.getLogger("yibao.payments")

AGREEMENT_LIMIT_FEN = 50_000_00  # per deduction, agreed with the institution; our password-free limit decides when we ask
_RETURN_URL_MAX = 256


def out_agreement_no(keyring: Keyring, payer_id: str, pi_id: str, generation: int = 1) -> str:
    """Our agreement number for (payer, institution, generation): the same every time, so a signing started again is the
    same one. A new generation — signing again after the agreement was terminated — is a new number: WeChat, Alipay and
    UnionPay keep a terminated agreement under its number and will not sign it again (the first generation's number is
    the one agreements signed before generations had)."""
    if generation < 1:
        raise ValueError("generation starts at 1")
    suffix = "" if generation == 1 else f"\x00{generation}"
    digest = keyring.purpose_key(f"channel agreement v1\x00{pi_id}\x00{payer_id}{suffix}").hex().upper()
    return f"AG{digest[:22]}"


def token_for(keyring: Keyring, payer_id: str, pi_id: str) -> str:
    return holder_token(keyring.purpose_key("channel holder token v1"), payer_id, pi_id)


@dataclass(frozen=True)
class Row:
    person_id: str
    payment_institution_id: str
    region: str
    out_agreement_no: str
    agreement_no: str | None
    limit_fen: int
    status: str
    signing_started_at: datetime | None
    generation: int = 1


def _from(r: Any) -> Row:
    return Row(r.person_id, r.payment_institution_id, r.region, r.out_agreement_no, r.agreement_no, int(r.limit_fen), r.status,
               as_datetime(r.signing_started_at) if r.signing_started_at else None, int(r.generation))


def _row(conn: Connection, payer_id: str, pi_id: str) -> Row | None:
    r = conn.execute(select(AG).where(AG.c.person_id == payer_id, AG.c.payment_institution_id == pi_id)).first()
    return None if r is None else _from(r)


def view(row: Row | None, start: SigningStart | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "none" if row is None else row.status,
                           "out_agreement_no": None if row is None else row.out_agreement_no,
                           "agreement_no": None if row is None else row.agreement_no}
    if start is not None:
        out["signing"] = {"url": start.url, "method": start.method, "form": dict(start.form),
                          "expires_at": iso_utc(start.expires_at) if start.expires_at else None}
    return out


def _check_return_url(url: str | None) -> None:
    if url is None:
        return
    if len(url) > _RETURN_URL_MAX or not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise InputError("return_url", "invalid_url", "返回地址应为 http(s):// 开头、至多256个字符的地址",
                         "must be an http(s):// URL of at most 256 characters")


def _still_terminating() -> Conflict:
    return Conflict("payment_institution_id", "agreement_terminating", "上一份免密协议仍在支付机构解约中，请稍后再签约",
                    "the previous agreement is still being terminated at the payment institution: sign again later")


def open_pending(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> tuple[Row, Any]:
    """The unit before the call: the holder is bound to the institution; their agreement row exists (pending unless
    signed already) and its signing is stamped as started now."""
    if not bindings.is_bound(conn, holder_id, pi_id):
        raise NotFound("payment_institution_id", "not_bound", "未绑定该支付机构，请先绑定", "not bound to this payment institution: bind it first")
    cfg = connectors.require(conn, pi_id)
    row = _row(conn, holder_id, pi_id)
    if row is None:
        if insert_ignore(conn, AG, dict(person_id=holder_id, payment_institution_id=pi_id, region=cfg.region,
                                        out_agreement_no=out_agreement_no(keyring, holder_id, pi_id), generation=1, agreement_no=None,
                                        limit_fen=AGREEMENT_LIMIT_FEN, status="pending", signing_started_at=now, updated_at=now,
                                        created_at=now)):
            audit.append(conn, region=cfg.region, actor=actor, action="channel.agreement.start", subject=holder_id,
                         detail={"payment_institution_id": pi_id}, now=now)
    elif row.status == "terminating":
        raise _still_terminating()
    elif row.status == "terminated":  # signing again after unbinding: the next generation, under a number of its own
        generation = row.generation + 1
        new_no = out_agreement_no(keyring, holder_id, pi_id, generation)
        conn.execute(update(AG).where(AG.c.person_id == holder_id, AG.c.payment_institution_id == pi_id, AG.c.status == "terminated")
                     .values(status="pending", out_agreement_no=new_no, generation=generation, agreement_no=None,
                             limit_fen=AGREEMENT_LIMIT_FEN, signing_started_at=now, updated_at=now))
        audit.append(conn, region=row.region, actor=actor, action="channel.agreement.start", subject=holder_id,
                     detail={"payment_institution_id": pi_id, "generation": generation, "after": row.out_agreement_no}, now=now)
    elif row.status != "active":
        conn.execute(update(AG).where(AG.c.person_id == holder_id, AG.c.payment_institution_id == pi_id)
                     .values(status="pending", signing_started_at=now, updated_at=now))
    row = _row(conn, holder_id, pi_id)
    assert row is not None
    return row, cfg


async def start(ctx: Context, *, holder_id: str, pi_id: str, return_url: str | None, actor: str) -> dict[str, Any]:
    """Start the holder's signing: what they open (the institution's page, a redirect or a QR of it, or UnionPay's form).
    Signed already: the active agreement, nothing started."""
    _check_return_url(return_url)
    ended = await ctx.run(lambda c: _row(c, holder_id, pi_id), write=False)
    if ended is not None and ended.status == "terminating" and await _terminate_at(ctx, ended, actor) != "terminated":
        raise _still_terminating()
    now = ctx.now()
    row, cfg = await ctx.run(lambda c: open_pending(c, ctx.keyring, now, holder_id=holder_id, pi_id=pi_id, actor=actor))
    if row.status == "active":
        return view(row)
    channel = ctx.connectors.get(cfg)
    req = AgreementRequest(row.out_agreement_no, token_for(ctx.keyring, holder_id, pi_id), row.limit_fen, return_url=return_url,
                           notify_url=cfg.notify_url, sent_at=row.signing_started_at)
    try:
        if cfg.connector == "bank":  # our own protocol: no bank page; the holder's consent in the app is the signing
            return await _enrol(ctx, channel, req, pi_id=pi_id, holder_id=holder_id, actor=actor)
        begun = await channel.start_signing(req)
    except ChannelError as exc:
        raise Conflict("payment_institution_id", "signing_unavailable", f"支付机构暂时无法发起签约（{exc.code}），请稍后再试",
                       f"the payment institution could not start the signing ({exc.code}); try again later") from None
    return view(row, begun)


async def _enrol(ctx: Context, bank: Any, req: AgreementRequest, *, pi_id: str, holder_id: str, actor: str) -> dict[str, Any]:
    """A bank connected as a password-free channel: enrolled under the terms version the app showed the holder,
    accepted now (the holder's tap on 签约); the bank's signed answer is its truth, recorded as a query's would be."""
    from yibao.channels.bank.connector import CreditConsent

    signed = await bank.enrol(req, CreditConsent(bank.config.consent_version, ctx.now()))
    now = ctx.now()

    def record(c: Connection) -> Row | None:
        if signed.status == "active":
            activate(c, now, pi_id=pi_id, out_no=req.out_agreement_no, agreement_no=signed.agreement_no, actor=actor)
        return _row(c, holder_id, pi_id)
    return view(await ctx.run(record))


def _of_institution(conn: Connection, pi_id: str, out_no: str) -> Any:
    """Our agreement ``out_no`` at ``pi_id`` only: an institution's word (its notification, its answer) never reaches
    an agreement at another institution, whatever number it names."""
    return conn.execute(select(AG).where(AG.c.out_agreement_no == out_no, AG.c.payment_institution_id == pi_id)).first()


def _at(r: Any) -> Any:
    """The WHERE of a write to the row ``r`` read: its key (holder, institution) and its number, so the write cannot
    land on another institution's row even if a number were ever shared."""
    return (AG.c.person_id == r.person_id, AG.c.payment_institution_id == r.payment_institution_id,
            AG.c.out_agreement_no == r.out_agreement_no)


def activate(conn: Connection, now: datetime, *, pi_id: str, out_no: str, agreement_no: str, actor: str) -> str:
    """The one write path to an active agreement: from a verified notification or the institution's answer to a query.
    Idempotent; an agreement number we never started at this institution is ignored."""
    r = _of_institution(conn, pi_id, out_no)
    if r is None:
        return "unknown_agreement"
    if r.status == "active" and r.agreement_no == agreement_no:
        return "already_active"
    if r.status in ENDING:  # the holder unbound: a late signing notification (or query) does not bring it back
        return "agreement_ended"
    conn.execute(update(AG).where(*_at(r)).values(status="active", agreement_no=agreement_no, updated_at=now))
    audit.append(conn, region=r.region, actor=actor, action="channel.agreement", subject=r.person_id,
                 detail={"payment_institution_id": pi_id, "out_agreement_no": out_no}, now=now)
    return "agreement_active"


def terminated(conn: Connection, now: datetime, *, pi_id: str, out_no: str, actor: str) -> str:
    r = _of_institution(conn, pi_id, out_no)
    if r is None:
        return "unknown_agreement"
    if r.status == "terminated":
        return "already_terminated"
    conn.execute(update(AG).where(*_at(r)).values(status="terminated", updated_at=now))
    audit.append(conn, region=r.region, actor=actor, action="channel.agreement.terminated", subject=r.person_id,
                 detail={"payment_institution_id": pi_id, "out_agreement_no": out_no}, now=now)
    return "agreement_terminated"


def apply_notification(conn: Connection, now: datetime, pi_id: str, n: Notification, actor: str) -> str:
    """A verified agreement notification (PAPAY.SIGN/TERMINATE, dut_user_sign/unsign, UnionPay's 79/74), in the unit
    that claims its dedup key (notifications.apply)."""
    out_no = n.data.get("subject")
    if not out_no:
        return "ignored"
    if n.status == "active":
        agreement_no = n.data.get("agreement_no") or n.data.get("token")
        if not agreement_no:
            return "ignored"
        return activate(conn, now, pi_id=pi_id, out_no=out_no, agreement_no=agreement_no, actor=actor)
    return terminated(conn, now, pi_id=pi_id, out_no=out_no, actor=actor)


async def refresh(ctx: Context, *, holder_id: str, pi_id: str, actor: str) -> dict[str, Any]:
    """Ask the institution about a pending agreement (the notification may be lost) and record what it says."""
    row = await ctx.run(lambda c: _row(c, holder_id, pi_id), write=False)
    if row is None or row.status != "pending":
        return view(row)
    channel = await ctx.channel(pi_id)
    try:
        truth = await channel.query_agreement(row.out_agreement_no, **sent_at_kw(channel, row.signing_started_at))
    except NotFoundAtChannel:
        return view(row)  # not signed (yet): the holder has not confirmed on the page
    except ChannelError as exc:
        log.warning("agreement %s: the query gave no answer (%s)", row.out_agreement_no, exc.code)
        return view(row)
    now = ctx.now()

    def record(c: Connection) -> Row | None:
        if truth.status == "active":
            activate(c, now, pi_id=pi_id, out_no=row.out_agreement_no, agreement_no=truth.agreement_no, actor=actor)
        return _row(c, holder_id, pi_id)
    return view(await ctx.run(record))


def status_of(conn: Connection, holder_id: str, pi_id: str) -> dict[str, Any]:
    return view(_row(conn, holder_id, pi_id))


# ---- unbinding: the agreement terminated at the institution ----------------------------------------

ENDING = ("terminating", "terminated")


def unbind(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> list[dict[str, Any]]:
    """The holder unbinds the institution (one unit): the binding ends (`bindings.unbind`) and their agreement there, signed
    or being signed, becomes ``terminating`` — no payment uses it from now on; `terminate` tells the institution next."""
    items = bindings.unbind(conn, now, holder_id=holder_id, pi_id=pi_id, actor=actor)
    row = _row(conn, holder_id, pi_id)
    if row is not None and row.status in ("active", "pending"):
        conn.execute(update(AG).where(AG.c.person_id == holder_id, AG.c.payment_institution_id == pi_id, AG.c.status == row.status)
                     .values(status="terminating", updated_at=now))
        audit.append(conn, region=row.region, actor=actor, action="channel.agreement.terminating", subject=holder_id,
                     detail={"payment_institution_id": pi_id, "out_agreement_no": row.out_agreement_no}, now=now)
    return items


async def terminate(ctx: Context, *, holder_id: str, pi_id: str, actor: str) -> dict[str, Any]:
    """Tell the institution the holder's agreement is ended (after `unbind`'s unit); the agreement's state after. An
    institution that cannot be reached leaves it ``terminating``, for recovery to ask again."""
    row = await ctx.run(lambda c: _row(c, holder_id, pi_id), write=False)
    if row is not None and row.status == "terminating":
        await _terminate_at(ctx, row, actor)
        row = await ctx.run(lambda c: _row(c, holder_id, pi_id), write=False)
    return view(row)


async def _terminate_at(ctx: Context, row: Row, actor: str) -> str:
    """One attempt: the institution's termination of ``row``'s agreement, recorded once it confirms (``terminated``) or
    says it has no such agreement (a signing never finished: nothing to end). Anything else: still ``terminating``."""
    try:
        channel = await ctx.channel(row.payment_institution_id)
        truth = await channel.terminate_agreement(row.out_agreement_no, **sent_at_kw(channel, row.signing_started_at))
        ended = truth.status == "terminated"
    except NotFoundAtChannel:
        ended = True
    except (ChannelError, YibaoError) as exc:
        log.warning("agreement %s: the institution did not terminate it (%s); recovery asks again", row.out_agreement_no, exc.code)
        return "terminating"
    if not ended:
        log.warning("agreement %s: the institution still shows it active after terminating it; recovery asks again", row.out_agreement_no)
        return "terminating"
    now = ctx.now()
    await ctx.run(lambda c: terminated(c, now, pi_id=row.payment_institution_id, out_no=row.out_agreement_no, actor=actor))
    return "terminated"


_TERMINATING = 20  # per recovery round: each is a call (an unreachable institution costs its timeout); the rest wait a round


async def retry_terminations(ctx: Context, now: datetime, *, grace: timedelta, actor: str) -> dict[str, str]:
    """Recovery's round: every agreement left ``terminating`` for ``grace`` (its unbind's own call is over) is terminated
    again at its institution; what each is now (out_agreement_no → terminated | terminating)."""
    rows = await ctx.run(lambda c: [_from(r) for r in c.execute(
        select(AG).where(AG.c.status == "terminating", AG.c.updated_at <= now - grace).order_by(AG.c.updated_at).limit(_TERMINATING))],
        write=False)
    return {row.out_agreement_no: await _terminate_at(ctx, row, actor) for row in rows}
