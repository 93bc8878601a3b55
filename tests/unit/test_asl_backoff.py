"""The backoff schedule and the counter logic the backoff states encode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from step_patterns.asl.backoff import MAX_SCHEDULE_STEPS, backoff_schedule, backoff_states, init_poll


@pytest.mark.parametrize(
    "min_seconds, max_seconds, factor, expected",
    [
        (2, 60, 2.0, (2, 4, 8, 16, 32, 60)),
        (1, 8, 2.0, (1, 2, 4, 8)),
        (5, 300, 1.5, (5, 8, 11, 17, 25, 38, 57, 85, 128, 192, 288, 300)),
        (10, 10, 3.0, (10,)),
        (7, 100, 1.0, (7,)),
        (3, 10, 10.0, (3, 10)),
    ],
)
def test_schedule(min_seconds, max_seconds, factor, expected):
    assert backoff_schedule(min_seconds, max_seconds, factor) == expected


@given(
    min_seconds=st.integers(1, 600),
    span=st.integers(0, 86_400),
    factor=st.floats(1.05, 10.0),
)
def test_schedule_properties(min_seconds, span, factor):
    max_seconds = min_seconds + span
    try:
        schedule = backoff_schedule(min_seconds, max_seconds, factor)
    except ValueError as error:
        assert "steps" in str(error)
        return
    assert schedule[0] == min_seconds
    assert schedule[-1] == max_seconds
    assert all(a <= b for a, b in zip(schedule, schedule[1:], strict=False))
    assert all(isinstance(s, int) and s >= 1 for s in schedule)
    assert len(schedule) <= MAX_SCHEDULE_STEPS


def _simulate(schedule, max_polls, polls_before_done):
    """Run the rendered InitPoll/CheckPollBudget/Grow/Hold states' logic in Python.

    Returns the waits the loop asks for, and whether it ran out of budget.
    """
    init = init_poll(schedule, "Wait", carry={}).render()["Parameters"]["poll"]
    choice, grow, hold = (state.render() for state in backoff_states(schedule, max_polls, wait="Wait", exhausted="Out"))
    budget_rule, grow_rule = choice["Choices"]
    assert grow["Parameters"]["wait_seconds.$"] == "States.ArrayGetItem($.poll.schedule, $.poll.step)"
    poll, waits = dict(init), []
    while True:
        waits.append(poll["wait_seconds"])
        if len(waits) == polls_before_done:
            return waits, False
        if poll["polls"] >= budget_rule["NumericGreaterThanEquals"]:
            return waits, True
        if poll["step"] < grow_rule["NumericLessThan"]:
            poll = {"polls": poll["polls"] + 1, "step": poll["step"] + 1,
                    "wait_seconds": poll["schedule"][poll["step"]], "schedule": poll["schedule"]}
        else:
            poll = {**poll, "polls": poll["polls"] + 1}


def test_waits_grow_along_the_schedule_then_hold_at_max():
    waits, exhausted = _simulate((2, 4, 8, 16, 32, 60), max_polls=100, polls_before_done=9)
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60, 60] and not exhausted


def test_poll_budget_allows_exactly_max_polls_status_checks():
    waits, exhausted = _simulate((1, 2), max_polls=3, polls_before_done=1000)
    assert waits == [1, 2, 2] and exhausted
