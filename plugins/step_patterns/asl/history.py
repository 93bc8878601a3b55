"""Execution-history cost of states, to keep loops far below the Standard 25,000-event cap.

Counts follow Step Functions' history for Standard executions:
- Pass, Choice, Wait, Succeed: ``<Type>StateEntered`` + ``<Type>StateExited`` = 2
- Fail: ``FailStateEntered`` = 1 (the ``ExecutionFailed`` is counted with the execution)
- Task: ``TaskStateEntered``, ``TaskScheduled``, ``TaskStarted``, ``TaskSucceeded``,
  ``TaskStateExited`` = 5, plus ``TaskScheduled``/``TaskStarted``/``TaskFailed`` = 3 for every
  retry attempt (worst case: every retrier uses all of its attempts)
- the execution itself: ``ExecutionStarted`` + ``ExecutionSucceeded``/``Failed`` = 2
"""

from __future__ import annotations

from .states import Choice, Fail, Pass, State, Succeed, Task, Wait

HISTORY_EVENT_CAP = 25_000  # Standard workflows: hard quota per execution
SAFE_FRACTION = 0.8  # leave room for redrives, operator retries and our own miscounts
EXECUTION_EVENTS = 2


def worst_case_events(state: State) -> int:
    """History events one visit of ``state`` can cost at most."""
    if isinstance(state, Task):
        return 5 + 3 * sum(retry.max_attempts for retry in state.retry)
    if isinstance(state, (Pass, Choice, Wait, Succeed)):
        return 2
    if isinstance(state, Fail):
        return 1
    raise ValueError(f"no history cost known for {state.type} state {state.name!r}")


def safe_event_budget() -> int:
    return int(HISTORY_EVENT_CAP * SAFE_FRACTION)
