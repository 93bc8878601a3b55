"""Exponential backoff for a poll loop, without a Lambda.

The schedule (``[min, min*f, min*f^2, ..., max]``, rounded to whole seconds) is computed
at build time and written into the definition. At run time the poll state lives under
``$.poll``::

    {"polls": 1, "step": 1, "wait_seconds": 2, "schedule": [2, 4, 8, 16, 32, 60]}

- ``polls``: status checks made so far, counting the one the next Wait leads to;
- ``wait_seconds``: what the Wait state waits (``SecondsPath``);
- ``step``: index into ``schedule`` of the *next* wait.

After each "still running" answer a Choice sends the loop to ``PollBudgetExhausted`` when
``polls`` reached the budget, to ``GrowBackoff`` while ``step`` is inside the schedule
(``wait_seconds = schedule[step]; step += 1`` with ``States.ArrayGetItem``/``States.MathAdd``),
else to ``HoldBackoff`` (keep waiting ``max``). Both count the poll.
"""

from __future__ import annotations

from typing import Any, Mapping

from step_lambdas.contract import checks

from .conditions import Condition
from .paths import Intrinsic, JsonPath
from .states import Choice, ChoiceRule, Pass

POLL_PATH = "$.poll"
MAX_SCHEDULE_STEPS = 64  # a longer schedule means the factor is too close to 1 to matter

INIT_POLL = "InitPoll"
CHECK_POLL_BUDGET = "CheckPollBudget"
GROW_BACKOFF = "GrowBackoff"
HOLD_BACKOFF = "HoldBackoff"


def backoff_schedule(min_seconds: int, max_seconds: int, factor: float,
                     names: Mapping[str, str] | None = None) -> tuple[int, ...]:
    """Waits from ``min_seconds`` growing by ``factor`` up to and including ``max_seconds``.

    ``names`` maps ``min_seconds``/``max_seconds``/``factor`` to what the caller's user calls
    them (an operator's parameters), for the error messages.

    >>> backoff_schedule(2, 60, 2.0)
    (2, 4, 8, 16, 32, 60)
    """
    named = {"min_seconds": "min_seconds", "max_seconds": "max_seconds", "factor": "factor", **(names or {})}
    for name, value in (("min_seconds", min_seconds), ("max_seconds", max_seconds)):
        checks.integer(named[name], value, 1, says="a whole number of seconds >= 1")
    if min_seconds > max_seconds:
        raise ValueError(f"{named['min_seconds']} ({min_seconds}) must not exceed {named['max_seconds']} ({max_seconds})")
    checks.number(named["factor"], factor, 1.0, says="a finite number >= 1.0")
    if factor == 1.0 or min_seconds == max_seconds:
        return (min_seconds,) if factor == 1.0 else (max_seconds,)
    schedule: list[int] = []
    exact = float(min_seconds)
    while True:
        seconds = min(max_seconds, round(exact))
        schedule.append(seconds)
        if seconds >= max_seconds:
            return tuple(schedule)
        if len(schedule) >= MAX_SCHEDULE_STEPS:
            raise ValueError(
                f"{named['factor']} {factor} grows {min_seconds}s to {max_seconds}s in more than "
                f"{MAX_SCHEDULE_STEPS} steps; use a larger factor or a narrower range"
            )
        exact *= factor


def init_poll(schedule: tuple[int, ...], next: str, carry: dict[str, Any]) -> Pass:
    """Start the poll state; the payload becomes ``carry`` (a template) plus ``poll``.

    Everything else is dropped, so the loop does not drag the execution input along.
    """
    poll = {"polls": 1, "step": 1, "wait_seconds": schedule[0], "schedule": list(schedule)}
    return Pass(
        name=INIT_POLL,
        comment="Start the backoff: first wait = schedule[0]; keep only what the loop needs.",
        parameters={**carry, "poll": poll},
        next=next,
    )


def backoff_states(schedule: tuple[int, ...], max_polls: int, *, wait: str, exhausted: str) -> list[Choice | Pass]:
    """The budget check and the two counter updates; both updates lead to the ``wait`` state."""
    schedule_path = JsonPath(f"{POLL_PATH}.schedule")
    polls_plus_one = Intrinsic(f"States.MathAdd({POLL_PATH}.polls, 1)")
    return [
        Choice(
            name=CHECK_POLL_BUDGET,
            comment=f"Stop after {max_polls} polls; grow the wait until the schedule's end.",
            rules=(
                ChoiceRule(Condition.number_greater_than_equals(f"{POLL_PATH}.polls", max_polls), exhausted),
                ChoiceRule(Condition.number_less_than(f"{POLL_PATH}.step", len(schedule)), GROW_BACKOFF),
            ),
            default=HOLD_BACKOFF,
        ),
        Pass(
            name=GROW_BACKOFF,
            parameters={
                "polls": polls_plus_one,
                "step": Intrinsic(f"States.MathAdd({POLL_PATH}.step, 1)"),
                "wait_seconds": Intrinsic(f"States.ArrayGetItem({POLL_PATH}.schedule, {POLL_PATH}.step)"),
                "schedule": schedule_path,
            },
            result_path=POLL_PATH,
            next=wait,
        ),
        Pass(
            name=HOLD_BACKOFF,
            parameters={
                "polls": polls_plus_one,
                "step": JsonPath(f"{POLL_PATH}.step"),
                "wait_seconds": JsonPath(f"{POLL_PATH}.wait_seconds"),
                "schedule": schedule_path,
            },
            result_path=POLL_PATH,
            next=wait,
        ),
    ]
