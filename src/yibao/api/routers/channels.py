"""Payment institutions' notifications: `POST /api/v1/channels/{payment_institution_id}/notify`; a wallet's requests for
its medical-insurance orders: `POST /api/v1/channels/{payment_institution_id}/med-ins/{action}` (services/payments/medins.py).

No bearer token: the institution's signature is the credential. The raw headers and body go to
`services/payments/notifications.receive`: verified by the institution's connector, refused in the
institution's own terms when they do not verify (it resends; the platform asks it instead), applied once.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from yibao.api.deps import platform
from yibao.api.schemas import ExactJsonRoute
from yibao.runtime.platform import Platform
from yibao.services.payments import medins, notifications

router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/channels", tags=["channels 支付机构通知"])
log = logging.getLogger("yibao.api.channels")


@router.post("/{payment_institution_id}/notify", summary="支付机构异步通知 A payment institution's signed notification",
             responses={200: {"description": "accepted, in the institution's own format (JSON, text or empty)"},
                        204: {"description": "accepted (WeChat-style)"},
                        400: {"description": "refused: not verified; the institution resends and the platform queries instead"}})
async def notify(request: Request, payment_institution_id: str = Path(min_length=1, max_length=40),
                 p: Platform = Depends(platform)) -> Response:
    ack = await notifications.receive(p.context, payment_institution_id, request.headers, await request.body())
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


@router.post("/{payment_institution_id}/med-ins/{action}", summary="钱包医保支付请求 A wallet's signed request about a medical-insurance order",
             responses={200: {"description": "done, answered in the wallet's terms"}, 403: {"description": "the signature does not verify"},
                        400: {"description": "refused, naming the wallet's own field"}})
async def med_ins(request: Request, payment_institution_id: str = Path(min_length=1, max_length=40),
                  action: str = Path(pattern="^(pay-auth|check|request|result)$"), p: Platform = Depends(platform)) -> dict[str, Any]:
    """`pay-auth`: the holder's authCode for a pay_auth_no, for one hospital (WeChat's `med_inst_no`, Alipay's `org_no`);
    `check`: a new mixed order's fee parts against the held pre-settlement; `request`: the holder pays — recorded before
    the self-pay part is collected; `result`: what became of the self-pay part (the insurance settlement posted, or its
    hold voided). Signed by the wallet's own key — WeChat Pay: JSON, its platform key over method, path, time, nonce and
    body (`Wechatpay-*` headers); Alipay: a form signed as its notifications, `notify_type` naming the call — each nonce
    once (a replay: 409 nonce_reused) (docs/channels.md "Medical-insurance orders")."""
    return await medins.wallet_request(p.context, payment_institution_id, action, request.method, request.url.path, request.headers,
                                       await request.body())
