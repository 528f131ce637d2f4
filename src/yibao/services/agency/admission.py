"""Admitting a payment institution (准入) only when the platform can reach it.

An admitted institution can be bound by holders and made their default; one the platform has no working connector
for would take a holder's payment code and then void the payment (没有可用的支付方式). So admission, from the pages and
the API alike, is a flow:

1. a unit records the institution if it is new (status ``registered``, 已登记待接入 — its connector can then be
   configured, `connectors.configure`) and reads its connector configuration;
2. none configured: refused, in words (the registration stays, so the operator configures and admits again);
3. the connector is tested with a harmless signed call — a query for an order number nobody ever used
   (``YBPROBE…``): the institution's signed "no such order" (or any signed answer) proves the address, our keys and
   theirs; no answer, a wrong signature, a refusal: admission refused with the institution's reason;
4. the last unit records the decision (`payment_institutions.admit`), if the configuration is still the one tested.

`prepare` hands back that last unit (the API runs it inside its idempotency record); `admit` runs it.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.engine import Connection

from yibao.channels.base import ChannelError, NotFoundAtChannel
from yibao.domain.errors import Conflict
from yibao.services import Context
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis

PROBE_PREFIX = "YBPROBE"


def probe_order_no() -> str:
    """An order number the platform never gives an order (ours are not prefixed so): 23 letters and digits."""
    return PROBE_PREFIX + secrets.token_hex(8).upper()


def no_connector(pi_id: str) -> Conflict:
    return Conflict("connector", "connector_missing",
                    f"支付机构 {pi_id} 尚未配置接入参数（连接器），不能准入：请先配置其连接器并通过检测，再准入",
                    f"payment institution {pi_id} has no connector configured, so it cannot be admitted: configure its connector "
                    "first (it is tested at admission), then admit it")


def check_failed(pi_id: str, error: Exception) -> Conflict:
    zh = getattr(error, "message_zh", None) or "无应答"
    en = getattr(error, "message_en", None) or f"no answer ({type(error).__name__})"
    return Conflict("connector", "connector_check_failed", f"支付机构 {pi_id} 的连接器检测未通过（{zh}），不能准入",
                    f"payment institution {pi_id} failed the connector check ({en}), so it cannot be admitted")


async def check(ctx: Context, pi_id: str) -> int:
    """Test the institution's connector with a signed query for an order nobody ever placed; the configuration's
    version tested. Refused (Conflict, field ``connector``) when none is configured or the call fails."""
    cfg = await ctx.run(lambda c: channel_registry.get(c, pi_id), write=False)
    if cfg is None:
        raise no_connector(pi_id)
    channel = ctx.connectors.overrides.get(pi_id) or ctx.connectors.get(cfg)
    # UnionPay names an order by its number and the time it was sent (txnTime): the probe's is now.
    when = {"sent_at": ctx.now()} if "sent_at" in inspect.signature(channel.query).parameters else {}
    try:
        await channel.query(probe_order_no(), **when)
    except NotFoundAtChannel:
        pass  # signed: "no such order" — reached, and both sides' keys work
    except (ChannelError, httpx.HTTPError, OSError) as e:
        raise check_failed(pi_id, e) from None
    return cfg.version


async def prepare(ctx: Context, *, pi_id: str, region: str, name: str, kind: str, admission_ref: str,
                  actor: str) -> Callable[[Connection], pis.PaymentInstitution]:
    """Steps 1–3; the unit recording the admission is handed back (run it inside the caller's idempotency record)."""
    pis.check_details(pi_id=pi_id, region=region, name=name, kind=kind, admission_ref=admission_ref)
    found = await ctx.run(lambda c: pis.register(c, ctx.now(), pi_id=pi_id, region=region, name=name, kind=kind, actor=actor))
    if found.status == "admitted":
        return lambda c: pis.admit(c, ctx.now(), pi_id=pi_id, region=region, name=name, kind=kind, admission_ref=admission_ref,
                                   actor=actor)  # refused there, as "already admitted"
    version = await check(ctx, pi_id)

    def record(conn: Connection) -> pis.PaymentInstitution:
        if channel_registry.version_of(conn, pi_id) != version:
            raise Conflict("connector", "connector_changed", "检测期间接入参数已变更，请重新准入（将再次检测）",
                           "the connector configuration changed during the check: admit again (it is tested again)")
        return pis.admit(conn, ctx.now(), pi_id=pi_id, region=region, name=name, kind=kind, admission_ref=admission_ref, actor=actor)
    return record


async def admit(ctx: Context, **details: Any) -> pis.PaymentInstitution:
    """Register if new, test the connector, then record the admission (steps 1–4)."""
    return await ctx.run(await prepare(ctx, **details))
