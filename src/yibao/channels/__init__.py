"""Payment-institution connectors: one package per institution (wxpay, alipay, unionpay, bank), each a connector
and its pure transformers, behind one `Channel` protocol (base.py). The SANDBOX institutions are in yibao.sandbox.channels.

    from yibao.channels import PaymentRequest, OutcomeUnknown
    result = await channel.pay(PaymentRequest(out_trade_no, amount_fen, "门诊缴费", agreement_no))

See docs/channels.md for the protocol, each institution's wire format and the sandboxes' knobs.
"""

from yibao.channels.base import (
                                 Ack,
                                 Agreement,
                                 AgreementRequest,
                                 BadSignature,
                                 Channel,
                                 ChannelError,
                                 Declined,
                                 NotFoundAtChannel,
                                 Notification,
                                 OutcomeUnknown,
                                 PaymentRequest,
                                 PaymentResult,
                                 RefundRequest,
                                 RefundResult,
                                 SigningStart,
                                 Statement,
                                 StatementError,
                                 StatementRow,
)
from yibao.channels.receiver import NotificationReceiver, Receipt
from yibao.channels.wire import holder_token

__all__ = ["Ack", "Agreement", "AgreementRequest", "BadSignature", "Channel", "ChannelError", "Declined", "Notification",
           "NotFoundAtChannel", "NotificationReceiver", "OutcomeUnknown", "PaymentRequest", "PaymentResult", "Receipt", "RefundRequest",
           "RefundResult", "SigningStart", "Statement", "StatementError", "StatementRow", "holder_token"]
