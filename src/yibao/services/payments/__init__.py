"""Payments (seed 004): one module per kind of payment or step, each with its units of work and the
async use case that runs them with the outside party called between units.

orders        the payment order, its moves through the domain's transition table, the shared units
cash          the cash leg: the payer's agreement at the institution, driving a held order to its end
onecode, face one-code and face payment (face also holds the 1:1 check that authorises one payment)
bills         mobile payment: the hospital publishes a bill, the holder pays it in the app
confirmation  the holder confirms a payment above the password-free limit with the PIN (pins.py)
refunds       refunds of completed payments; callbacks: signed results to hospitals (an outbox)
notifications institutions' notifications, verified then applied once; recovery: finishing what stopped midway
paycodes      the dynamic payment code; liabilities: backstop liability (兜底责任)
"""
