"""Payment institutions' notifications: `POST /api/v1/channels/{payment_institution_id}/notify`.

No bearer token: the institution's signature is the credential. The raw headers and body go to
the connector's `verify_notification`; anything unverified is refused in the institution's own
terms (so it resends) and never acted on — the order is then settled by asking the institution
(recovery's query). A verified event is applied once: its dedup claim is inserted in the same unit
of work as its effect (services/payments.py `apply_notification`).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from yibao.channels.base import ChannelError
from yibao.domain.errors import NotFound
from yibao.runtime.platform import Platform, platform
from yibao.services.agency import connectors as channel_registry
from yibao.services.payments import orders as payments

router = APIRouter(prefix="/api/v1/channels", tags=["channels 支付机构通知"])
log = logging.getLogger("yibao.api.channels")


@router.post("/{payment_institution_id}/notify", summary="支付机构异步通知 A payment institution's signed notification",
             responses={200: {"description": "accepted, in the institution's own format (JSON, text or empty)"},
                        204: {"description": "accepted (WeChat-style)"},
                        400: {"description": "refused: not verified; the institution resends and the platform queries instead"}})
async def notify(request: Request, payment_institution_id: str = Path(min_length=1, max_length=40),
                 p: Platform = Depends(platform)) -> Response:
    cfg = await p.run(lambda c: channel_registry.get(c, payment_institution_id), write=False)
    if cfg is None:
        raise NotFound("payment_institution_id", "not_found", "支付机构不存在或未配置", "no such configured payment institution")
    channel = p.channels.get(cfg)
    body = await request.body()
    try:
        notification = channel.verify_notification(dict(request.headers), body)
    except ChannelError as exc:
        log.warning("notification from %s refused: %s", payment_institution_id, exc.code)
        ack = channel.ack(False)
        return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
    now = p.now()
    effect = await p.run(lambda c: payments.apply_notification(c, now, pi_id=payment_institution_id, region=cfg.region,
                                                               notification=notification, actor=f"channel:{payment_institution_id}"))
    log.info("notification from %s (%s %s): %s", payment_institution_id, notification.kind, notification.status, effect)
    ack = channel.ack(True)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
