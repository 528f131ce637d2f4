"""The payment order's transition table: hand-checked moves and properties over random event sequences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain import payment_order as po


def run(events: list[str], state: str = po.CREATED) -> str:
    for e in events:
        state = po.transition(state, e)
    return state


@pytest.mark.parametrize("events, end", [
    ([po.HOLD, po.NO_CASH], po.COMPLETED),
    ([po.HOLD, po.REQUEST_CASH, po.CASH_SUCCEEDED], po.COMPLETED),
    ([po.HOLD, po.REQUEST_CASH, po.DECLINED], po.VOIDED),
    ([po.HOLD, po.REQUEST_CASH, po.CASH_UNKNOWN, po.CASH_UNKNOWN, po.CASH_SUCCEEDED], po.COMPLETED),
    ([po.HOLD, po.REQUEST_CASH, po.CASH_UNKNOWN, po.CASH_NOT_FOUND], po.VOIDED),
    ([po.HOLD, po.ASK_HOLDER, po.WRONG_PIN, po.WRONG_PIN, po.REQUEST_CASH, po.CASH_SUCCEEDED], po.COMPLETED),
    ([po.HOLD, po.ASK_HOLDER, po.HOLDER_DECLINED], po.VOIDED),
    ([po.HOLD, po.ASK_HOLDER, po.CONFIRMATION_EXPIRED], po.VOIDED),
    ([po.HOLD, po.ASK_HOLDER, po.PIN_EXHAUSTED], po.VOIDED),
    ([po.HOLD, po.ABANDONED], po.VOIDED),
])
def test_the_documented_paths(events, end):
    assert run(events) == end


@pytest.mark.parametrize("state, event", [
    (po.CREATED, po.REQUEST_CASH),  # never ask for cash before the legs are held
    (po.HELD, po.CASH_SUCCEEDED),  # a success is only believed after the request was recorded
    (po.HELD, po.HOLDER_DECLINED),
    (po.AWAITING_CONFIRMATION, po.CASH_SUCCEEDED),
    (po.CASH_REQUESTED, po.ABANDONED),  # the institution may have the order: only its answer ends it
    (po.CASH_UNKNOWN, po.CONFIRMATION_EXPIRED),
    (po.COMPLETED, po.DECLINED),
    (po.VOIDED, po.CASH_SUCCEEDED),
])
def test_illegal_moves_raise_naming_state_and_event(state, event):
    with pytest.raises(po.IllegalTransition) as exc:
        po.transition(state, event)
    assert (exc.value.code, exc.value.field, exc.value.state, exc.value.event) == ("illegal_transition", "status", state, event)


def test_the_table_only_names_known_states_and_events():
    for (state, event), after in po.TRANSITIONS.items():
        assert state in po.STATES and after in po.STATES and event in po.EVENTS
    assert all(po.TRANSITIONS[(s, e)] == po.VOIDED for (s, e) in po.TRANSITIONS if e in po.VOID_EVENTS)


def test_every_open_state_can_still_end():
    """From every non-terminal state some path reaches a terminal one (no order can be stuck forever)."""
    for state in po.OPEN:
        seen, frontier = {state}, [state]
        while frontier:
            s = frontier.pop()
            for e in po.allowed(s):
                t = po.transition(s, e)
                if t not in seen:
                    seen.add(t)
                    frontier.append(t)
        assert seen & po.TERMINAL, state


@given(st.lists(st.sampled_from(po.EVENTS), max_size=30))
def test_random_event_sequences_never_leave_the_table(events):
    """Apply random events, skipping the refused ones: every state reached is a known one, a refused event
    changes nothing, and once terminal an order stays exactly where it is."""
    state = po.CREATED
    terminal_at = None
    for e in events:
        try:
            after = po.transition(state, e)
        except po.IllegalTransition:
            assert (state, e) not in po.TRANSITIONS
            continue
        assert after in po.STATES
        if state in po.FINAL or (state in po.TERMINAL and e not in po.REFUND_EVENTS):
            raise AssertionError(f"{state} accepted {e}")
        if state in po.TERMINAL:
            assert after in po.PAID  # only refunds leave a finished payment, and only a paid one
        state = after
        if state in po.TERMINAL and terminal_at is None:
            terminal_at = state
    if terminal_at is not None:
        assert (state == terminal_at) or (terminal_at == po.COMPLETED and state in po.PAID)


@given(st.sampled_from(sorted(po.TERMINAL)), st.sampled_from([e for e in po.EVENTS if e not in po.REFUND_EVENTS]))
def test_finished_payments_take_no_payment_event(state, event):
    with pytest.raises(po.IllegalTransition):
        po.transition(state, event)


@given(st.sampled_from(sorted(po.FINAL)), st.sampled_from(po.EVENTS))
def test_final_states_are_absorbing(state, event):
    with pytest.raises(po.IllegalTransition):
        po.transition(state, event)


@pytest.mark.parametrize("events, end", [
    ([po.REFUND_REQUESTED, po.REFUNDED_ALL], po.REFUNDED),
    ([po.REFUND_REQUESTED, po.REFUND_UNKNOWN, po.REFUNDED_PART, po.REFUND_REQUESTED, po.REFUNDED_ALL], po.REFUNDED),
    ([po.REFUND_REQUESTED, po.REFUND_FAILED], po.COMPLETED),
    ([po.REFUND_REQUESTED, po.REFUNDED_PART, po.REFUND_REQUESTED, po.REFUND_FAILED_AFTER_PART], po.PARTIALLY_REFUNDED),
])
def test_the_refund_paths(events, end):
    assert run(events, po.COMPLETED) == end


def test_a_bill_is_held_when_paid_or_voided_by_wrong_pins_or_the_hospitals_withdrawal_only():
    assert run([po.HOLD], po.BILLED) == po.HELD and run([po.PIN_EXHAUSTED], po.BILLED) == po.VOIDED
    assert run([po.WITHDRAWN], po.BILLED) == po.VOIDED
    assert set(po.allowed(po.BILLED)) == {po.HOLD, po.PIN_EXHAUSTED, po.WITHDRAWN}
    assert not any(e == po.WITHDRAWN for (s, e) in po.TRANSITIONS if s != po.BILLED)  # once being paid, a bill stays the holder's


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=200_000))
def test_what_follows_the_hold_depends_only_on_cash_and_the_limit(cash, limit):
    event = po.first_event_after_hold(cash, limit)
    if cash == 0:
        assert event == po.NO_CASH
    elif cash <= limit:
        assert event == po.REQUEST_CASH
    else:
        assert event == po.ASK_HOLDER
    assert po.transition(po.HELD, event) in (po.COMPLETED, po.CASH_REQUESTED, po.AWAITING_CONFIRMATION)
