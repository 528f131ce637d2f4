"""The payment order's life, as one explicit transition table. Pure: no I/O.

A payment order carries one settlement through to money: the settlement is priced and every
fund and account leg is *held* (pending two-phase transfers), then the patient's cash share is
collected from a payment institution, and only then is everything posted — or everything voided.

    created ──hold──▶ held ──no_cash──▶ completed        (created: the code is used, the visit registered)
                       │ ├──ask_holder──▶ awaiting_confirmation ──request_cash──▶ cash_requested
                       │ └──request_cash──────────────────────────────────────▶ cash_requested
    cash_requested ──cash_succeeded──▶ completed      cash_requested ──cash_unknown──▶ cash_unknown
    cash_unknown   ──cash_succeeded──▶ completed      cash_unknown ──cash_unknown──▶ cash_unknown (still asking)
    any open state ──(a void event)──▶ voided

`cash_requested` is recorded *before* the institution is called: a crash after that point leaves
an order that recovery asks the institution about (the truth), never one it guesses about.
`completed` and `voided` are terminal: no event leaves them.

Refunds add states on top of `completed`: `refunding` (recorded before the institution is asked for
the cash back; stays while the answer is unknown), `partially_refunded` (insurance or cash given back,
not both) and `refunded` (everything given back; final). A refused refund returns the order to where it was.
"""

from __future__ import annotations

from yibao.domain.errors import Conflict

BILLED = "billed"  # mobile payment: the hospital published the bill; the holder pays it in the app
CREATED = "created"
HELD = "held"
AWAITING_CONFIRMATION = "awaiting_confirmation"
CASH_REQUESTED = "cash_requested"
CASH_UNKNOWN = "cash_unknown"
COMPLETED = "completed"
VOIDED = "voided"
REFUNDING = "refunding"  # a refund was recorded before the institution is asked for the cash back (or is in doubt)
PARTIALLY_REFUNDED = "partially_refunded"  # the insurance part or the cash part was given back, not both
REFUNDED = "refunded"  # every leg given back: fund, account and cash

STATES = (BILLED, CREATED, HELD, AWAITING_CONFIRMATION, CASH_REQUESTED, CASH_UNKNOWN, COMPLETED, VOIDED, REFUNDING, PARTIALLY_REFUNDED,
          REFUNDED)

# Events. The void events each name why the order was undone (kept as the order's void reason).
HOLD = "hold"  # settlement priced, legs held, accumulators reserved, the code consumed
NO_CASH = "no_cash"  # nothing left for the patient to pay in cash
ASK_HOLDER = "ask_holder"  # cash above the password-free limit: the holder confirms with the PIN
WRONG_PIN = "wrong_pin"  # a wrong PIN, counted; the order still waits
REQUEST_CASH = "request_cash"  # recorded before the institution is called
CASH_SUCCEEDED = "cash_succeeded"  # the institution says the cash was collected
CASH_UNKNOWN = "cash_unknown"  # timeout, 5xx, unsigned answer, processing: ask again later
DECLINED = "declined"  # the institution refused the cash, signed
CASH_FAILED = "cash_failed"  # a query or notification says the cash failed
CASH_NOT_FOUND = "cash_not_found"  # a query says the institution never saw the order
HOLDER_DECLINED = "holder_declined"  # the holder refused in the app
CONFIRMATION_EXPIRED = "confirmation_expired"  # the holder did not confirm in time
PIN_EXHAUSTED = "pin_exhausted"  # too many wrong PINs
ABANDONED = "abandoned"  # held, never sent to an institution, and the request is gone (a crash)
NO_CHANNEL = "no_channel"  # no usable binding, agreement or institution for the cash
WITHDRAWN = "withdrawn"  # the hospital withdrew a published bill before the holder paid it

# Refund events (services/payments/refunds.py). A refund's own record says what it gives back; the order says where it stands.
REFUND_REQUESTED = "refund_requested"  # recorded before the institution is called
REFUND_UNKNOWN = "refund_unknown"  # timeout, 5xx, processing: ask again (query_refund)
REFUNDED_PART = "refunded_part"  # the refund succeeded and something is still not given back
REFUNDED_ALL = "refunded_all"  # the refund succeeded and nothing is left
REFUND_FAILED = "refund_failed"  # the institution refused the refund: nothing was given back by it (back to completed)
REFUND_FAILED_AFTER_PART = "refund_failed_after_part"  # the same, after an earlier partial refund
REFUND_EVENTS = (REFUND_REQUESTED, REFUND_UNKNOWN, REFUNDED_PART, REFUNDED_ALL, REFUND_FAILED, REFUND_FAILED_AFTER_PART)

VOID_EVENTS = (DECLINED, CASH_FAILED, CASH_NOT_FOUND, HOLDER_DECLINED, CONFIRMATION_EXPIRED, PIN_EXHAUSTED, ABANDONED, NO_CHANNEL, WITHDRAWN)
EVENTS = (HOLD, NO_CASH, ASK_HOLDER, WRONG_PIN, REQUEST_CASH, CASH_SUCCEEDED, CASH_UNKNOWN, *VOID_EVENTS, *REFUND_EVENTS)

TRANSITIONS: dict[tuple[str, str], str] = {
    (BILLED, HOLD): HELD,  # the holder pays: priced and held at that moment (the PIN checked before, if cash is due)
    (BILLED, PIN_EXHAUSTED): VOIDED,  # too many wrong PINs on the bill: the hospital publishes it again
    (BILLED, WITHDRAWN): VOIDED,  # the hospital takes the bill back (to change its lines, or to be paid otherwise)
    (CREATED, HOLD): HELD,
    (CREATED, ABANDONED): VOIDED,  # the code was used but nothing was held (the hold failed, or the process died)
    (CREATED, NO_CHANNEL): VOIDED,
    (HELD, NO_CASH): COMPLETED,
    (HELD, ASK_HOLDER): AWAITING_CONFIRMATION,
    (HELD, REQUEST_CASH): CASH_REQUESTED,
    (HELD, ABANDONED): VOIDED,
    (HELD, NO_CHANNEL): VOIDED,
    (AWAITING_CONFIRMATION, WRONG_PIN): AWAITING_CONFIRMATION,
    (AWAITING_CONFIRMATION, REQUEST_CASH): CASH_REQUESTED,
    (AWAITING_CONFIRMATION, HOLDER_DECLINED): VOIDED,
    (AWAITING_CONFIRMATION, CONFIRMATION_EXPIRED): VOIDED,
    (AWAITING_CONFIRMATION, PIN_EXHAUSTED): VOIDED,
    (AWAITING_CONFIRMATION, NO_CHANNEL): VOIDED,
    (CASH_REQUESTED, CASH_SUCCEEDED): COMPLETED,
    (CASH_REQUESTED, CASH_UNKNOWN): CASH_UNKNOWN,
    (CASH_REQUESTED, DECLINED): VOIDED,
    (CASH_REQUESTED, CASH_FAILED): VOIDED,
    (CASH_REQUESTED, CASH_NOT_FOUND): VOIDED,
    (CASH_UNKNOWN, CASH_SUCCEEDED): COMPLETED,
    (CASH_UNKNOWN, CASH_UNKNOWN): CASH_UNKNOWN,
    (CASH_UNKNOWN, DECLINED): VOIDED,
    (CASH_UNKNOWN, CASH_FAILED): VOIDED,
    (CASH_UNKNOWN, CASH_NOT_FOUND): VOIDED,
    # refunds: on top of completed
    (COMPLETED, REFUND_REQUESTED): REFUNDING,
    (PARTIALLY_REFUNDED, REFUND_REQUESTED): REFUNDING,
    (REFUNDING, REFUND_UNKNOWN): REFUNDING,
    (REFUNDING, REFUNDED_PART): PARTIALLY_REFUNDED,
    (REFUNDING, REFUNDED_ALL): REFUNDED,
    (REFUNDING, REFUND_FAILED): COMPLETED,
    (REFUNDING, REFUND_FAILED_AFTER_PART): PARTIALLY_REFUNDED,
}

# Terminal for the payment: no payment event leaves these (refund events may leave `completed`).
TERMINAL = frozenset({COMPLETED, VOIDED, REFUNDING, PARTIALLY_REFUNDED, REFUNDED})
# Where no event at all leads out.
FINAL = frozenset({VOIDED, REFUNDED})
# A payment whose money moved (completed, and what refunds make of it).
PAID = frozenset({COMPLETED, REFUNDING, PARTIALLY_REFUNDED, REFUNDED})
# States whose ledger legs are still held: what recovery looks at.
OPEN = tuple(s for s in STATES if s not in TERMINAL)
# States in which the institution may have been asked for the cash: only its answer may end them.
CASH_IN_DOUBT = (CASH_REQUESTED, CASH_UNKNOWN)


class IllegalTransition(Conflict):
    def __init__(self, state: str, event: str) -> None:
        super().__init__("status", "illegal_transition", f"支付单状态为 {state}，不能执行 {event}",
                         f"a payment order in state {state} cannot take event {event}")
        self.state = state
        self.event = event


def transition(state: str, event: str) -> str:
    """The state after ``event``; raises `IllegalTransition` for a move the table does not allow."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def allowed(state: str) -> tuple[str, ...]:
    """The events a state accepts (none for a terminal state)."""
    return tuple(e for (s, e) in TRANSITIONS if s == state)


def needs_confirmation(cash_fen: int, password_free_limit_fen: int) -> bool:
    """Cash above the holder's password-free limit waits for the holder's PIN; up to it, it does not."""
    return cash_fen > password_free_limit_fen


def first_event_after_hold(cash_fen: int, password_free_limit_fen: int) -> str:
    """What follows the hold: no cash → complete; within the limit → ask the institution; above → ask the holder."""
    if cash_fen < 0:
        raise ValueError("cash cannot be negative")
    if cash_fen == 0:
        return NO_CASH
    return ASK_HOLDER if needs_confirmation(cash_fen, password_free_limit_fen) else REQUEST_CASH
