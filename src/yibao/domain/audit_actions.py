"""The names of the audit log's action codes, Simplified Chinese first, English second.

Every code a service writes to the audit log (`services/books/audit.append(action=...)`) has a name here, and only
those: tests/services/books/test_audit_actions.py reads the code for every `action=` it emits (the f-strings too, with
the values they can take) and compares. The audit page shows an entry's action by this name, the code beside it;
a code without a name (an older entry, an action since retired) is shown as the code.
"""

from __future__ import annotations

NAMES: dict[str, tuple[str, str]] = {
    # the personal account and contributions
    "account.credit": ("个人账户入账", "Personal account credited"),
    "account.credit_request": ("个人账户入账申请", "Personal account credit requested"),
    "contributions.collect": ("征缴入账", "Contributions collected"),
    # benefits (subsidies paid onto a card's bank account)
    "benefits.record": ("登记待遇发放", "Benefit payment recorded"),
    "benefits.submit": ("待遇发放提交银行", "Benefit payment sent to the bank"),
    "benefits.credited": ("待遇已到账", "Benefit credited"),
    "benefits.returned": ("待遇被银行退回", "Benefit returned by the bank"),
    # cards, PINs and the e-card
    "card.account": ("社保卡金融账户登记", "Card's bank account recorded"),
    "card.found": ("社保卡解挂", "Lost card reported found"),
    "card.replace": ("社保卡补换", "Card replaced"),
    "card_pin.present": ("持卡输密就医", "Card and PIN presented"),
    "card_pin.wrong": ("社保卡密码错误", "Wrong card PIN"),
    "ecard.issue": ("电子社保卡签发", "E-card issued"),
    "ecard.bind": ("绑定支付方式", "Payment method bound"),
    "ecard.default": ("设置默认支付方式", "Default payment method set"),
    "ecard.limit": ("修改免密额度", "Password-free limit changed"),
    "ecard.unbind": ("解绑支付方式", "Payment method unbound"),
    "ecard.unbind_all": ("解绑全部支付方式", "Every payment method unbound"),
    "payment_pin.set": ("设置支付密码", "Payment PIN set"),
    "payment_pin.change": ("修改支付密码", "Payment PIN changed"),
    "payment_pin.wrong": ("支付密码错误", "Wrong payment PIN"),
    "paycode.issue": ("生成医保码", "Payment code issued"),
    "paycode.consume": ("医保码被扫用", "Payment code used"),
    # payment institutions and their agreements
    "channel.agreement": ("支付协议", "Payment agreement"),
    "channel.agreement.start": ("发起签约", "Agreement signing started"),
    "channel.agreement.terminating": ("解约中", "Agreement being terminated"),
    "channel.agreement.terminated": ("已解约", "Agreement terminated"),
    "channel.configure": ("配置支付机构", "Payment institution configured"),
    "payment_institution.register": ("支付机构登记（待接入）", "Payment institution registered (not connected)"),
    "payment_institution.admit": ("支付机构准入", "Payment institution admitted"),
    "payment_institution.suspend": ("支付机构暂停", "Payment institution suspended"),
    "med_ins.authorise": ("医保移动支付授权", "Mobile insurance payment authorised"),
    "med_ins.pay_auth": ("医保支付授权码", "Insurance payment authorisation"),
    # clearing and reconciliation
    "clearing.apply": ("清算申请", "Clearing applied for"),
    "clearing.approve": ("清算审核通过", "Clearing approved"),
    "clearing.withdraw": ("撤回清算申请", "Clearing application withdrawn"),
    "clearing.payee": ("登记收款账户", "Payee account recorded"),
    "clearing.instruct": ("清算拨付指令", "Clearing payment instructed"),
    "clearing.cleared": ("已清算", "Cleared"),
    "clearing.payment_failed": ("清算拨付失败", "Clearing payment failed"),
    "clearing.interregion_confirm": ("异地清算确认", "Cross-region clearing confirmed"),
    "clearing.interregion_rollback": ("异地清算回退", "Cross-region clearing rolled back"),
    "reconciliation.run": ("对账", "Reconciliation run"),
    "reconciliation.resolve": ("对账差异处理", "Reconciliation difference resolved"),
    "reconciliation.failed": ("对账失败", "Reconciliation failed"),
    # credit payment
    "credit.consent": ("同意信用支付协议", "Credit terms accepted"),
    "credit.enrol": ("开通信用支付", "Enrolled in credit payment"),
    "credit.refused": ("银行拒绝开通", "Enrolment refused by the bank"),
    "credit.line_change": ("信用额度变更", "Credit line changed"),
    "credit.suspend": ("信用支付暂停", "Credit payment suspended"),
    "credit.restore": ("信用支付恢复", "Credit payment restored"),
    "credit.hold": ("冻结信用额度", "Credit held"),
    "credit.capture": ("信用支付扣款", "Credit captured"),
    "credit.failed": ("信用额度冻结失败", "Credit hold failed"),
    "credit.repay_start": ("发起还款", "Repayment started"),
    "credit.repaid": ("已还款", "Repaid"),
    # family
    "family.link_account": ("关联家人账户", "Family account linked"),
    "family.link_child_card": ("关联子女社保卡", "Child's card linked"),
    "family.mutual_aid_grant": ("开通家庭共济", "Mutual aid granted"),
    "family.mutual_aid_revoke": ("取消家庭共济", "Mutual aid revoked"),
    # filing, people, identity and personal data
    "filing.create": ("异地就医备案", "Cross-region filing made"),
    "person.enrol": ("参保登记", "Person enrolled"),
    "identity.face_enrol": ("采集人脸", "Face enrolled"),
    "identity.real_name": ("实名认证", "Real-name verified"),
    "identity.real_person": ("实人认证", "Real-person verified"),
    "session.real_name_verified": ("刷脸登录成功", "Face log-in verified"),
    "session.real_name_face_mismatch": ("刷脸登录：人脸不符", "Face log-in: face mismatch"),
    "session.real_name_liveness_failed": ("刷脸登录：活体检测未通过", "Face log-in: liveness failed"),
    "session.real_name_name_mismatch": ("刷脸登录：姓名不符", "Face log-in: name mismatch"),
    "pii.lookup": ("查询参保人信息", "Person looked up"),
    "pii.lookup_enumeration": ("疑似批量查询参保人", "Suspected look-up enumeration"),
    "pii.operator_lookup": ("经办查询参保人", "Person looked up by an operator"),
    "pii.card_photo": ("读取制卡照片", "Card photo read"),
    "pii.face_template": ("读取人脸模板", "Face template read"),
    # face payment
    "face_pay.consume": ("刷脸支付凭证使用", "Face payment used"),
    "face_pay.verified": ("刷脸支付核验通过", "Face payment verified"),
    "face_pay.face_mismatch": ("刷脸支付：人脸不符", "Face payment: face mismatch"),
    "face_pay.liveness_failed": ("刷脸支付：活体检测未通过", "Face payment: liveness failed"),
    # institutions, HIS, FSI
    "institution.admit": ("定点机构准入", "Institution admitted"),
    "his.callback_configured": ("配置医院回调", "Hospital callback configured"),
    "his.callback_failed": ("医院回调失败", "Hospital callback failed"),
    "fsi.credential_issue": ("签发接口凭证", "Interface credential issued"),
    "fsi.credential_revoke": ("吊销接口凭证", "Interface credential revoked"),
    "liability.charge": ("责任追偿记账", "Liability charged"),
    "liability.recourse": ("责任追偿", "Liability recourse"),
    # pilots
    "pilot.apply": ("试点申请", "Pilot applied for"),
    "pilot.approve": ("试点批准", "Pilot approved"),
    "pilot.reject": ("试点驳回", "Pilot rejected"),
    "pilot.record": ("登记试点协议", "Pilot agreement recorded"),
    "pilot.renew": ("试点续签", "Pilot renewed"),
    "pilot.suspend": ("试点暂停", "Pilot suspended"),
    "pilot.restore": ("试点恢复", "Pilot restored"),
    # settlements
    "settlement.settle": ("结算", "Settled"),
    "settlement.hold": ("结算待支付", "Settlement held for payment"),
    "settlement.post": ("结算入账", "Settlement posted"),
    "settlement.void": ("结算作废", "Settlement voided"),
    "settlement.cancel": ("撤销结算", "Settlement cancelled"),
    "settlement.reversal": ("冲正结算", "Settlement reversed"),
    "settlement.reversal_before_arrival": ("冲正先于结算到达", "Reversal before the settlement arrived"),
    "settlement.refund_insurance": ("退回医保部分", "Insurance part refunded"),
    "settlement.refund_cash": ("退回自付部分", "Cash part refunded"),
    "settlement.refund_items": ("结算按项目退款", "Some items of a settlement refunded"),
    # refunds
    "refund.adopted": ("退款认领", "Refund adopted"),
    "refund.items": ("按项目退款", "Some items refunded"),
    "refund.reason": ("退款原因", "Refund reason"),
    "refund.unowned": ("无主退款", "Unowned refund"),
    # payment orders (domain/payment_order.py, one per event)
    "payment.create": ("创建支付订单", "Payment order created"),
    "payment.anomaly": ("支付异常", "Payment anomaly"),
    "payment.hold": ("支付：医保已冻结", "Payment: insurance held"),
    "payment.no_cash": ("支付：无需自付", "Payment: no cash share"),
    "payment.ask_holder": ("支付：待本人确认", "Payment: asking the holder"),
    "payment.wrong_pin": ("支付：密码错误", "Payment: wrong PIN"),
    "payment.request_cash": ("支付：请求扣款", "Payment: cash requested"),
    "payment.cash_succeeded": ("支付：扣款成功", "Payment: cash collected"),
    "payment.cash_unknown": ("支付：扣款结果未知", "Payment: cash outcome unknown"),
    "payment.declined": ("支付：支付机构拒绝", "Payment: declined by the institution"),
    "payment.cash_failed": ("支付：扣款失败", "Payment: cash failed"),
    "payment.cash_not_found": ("支付：支付机构无此订单", "Payment: unknown to the institution"),
    "payment.holder_declined": ("支付：本人拒绝", "Payment: declined by the holder"),
    "payment.confirmation_expired": ("支付：确认超时", "Payment: confirmation expired"),
    "payment.pin_exhausted": ("支付：密码错误次数过多", "Payment: too many wrong PINs"),
    "payment.abandoned": ("支付：已放弃", "Payment: abandoned"),
    "payment.no_channel": ("支付：无可用支付方式", "Payment: no usable channel"),
    "payment.withdrawn": ("支付：医院撤回账单", "Payment: bill withdrawn"),
    "payment.refund_requested": ("退款：已申请", "Refund requested"),
    "payment.refund_unknown": ("退款：结果未知", "Refund outcome unknown"),
    "payment.refunded_part": ("退款：部分退回", "Refunded in part"),
    "payment.refunded_all": ("退款：全部退回", "Refunded in full"),
    "payment.refund_failed": ("退款：失败", "Refund failed"),
    "payment.refund_failed_after_part": ("退款：部分退回后失败", "Refund failed after a partial refund"),
}


def name(code: str, lang: str) -> str:
    """The action's name in ``lang`` (zh or en); the code itself when it has none."""
    names = NAMES.get(code)
    if names is None:
        return code
    return names[1] if lang == "en" else names[0]
