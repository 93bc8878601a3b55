"""The chunk syncer's watch on its execution: stop once it is not RUNNING, never on a blind spot."""

from __future__ import annotations

import time

import pytest

from step_lambdas.execution_watch import ExecutionStopped, ExecutionWatch

ARN = "arn:aws:states:us-east-1:123456789012:execution:step-patterns-x:run-1"


class FakeStepFunctions:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def describe_execution(self, executionArn):
        assert executionArn == ARN
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return {"status": answer}


def _wait_for(check, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_raises_once_the_execution_is_aborted_and_names_it():
    sfn = FakeStepFunctions("RUNNING", "ABORTED")
    with ExecutionWatch(sfn, ARN, poll_s=0.01) as watch:
        watch.raise_if_stopped(1, 10)  # still running: nothing
        _wait_for(lambda: watch.stopped_status is not None)
        with pytest.raises(ExecutionStopped, match=f"{ARN} is ABORTED"):
            watch.raise_if_stopped(2, 10)


def test_a_failing_describe_does_not_stop_the_sync():
    sfn = FakeStepFunctions(RuntimeError("throttled"))
    with ExecutionWatch(sfn, ARN, poll_s=0.01) as watch:
        _wait_for(lambda: sfn.calls >= 3)
        watch.raise_if_stopped(1, 10)


def test_without_an_execution_it_never_polls():
    sfn = FakeStepFunctions("ABORTED")
    with ExecutionWatch(sfn, None, poll_s=0.01) as watch:
        time.sleep(0.05)
        watch.raise_if_stopped(1, 10)
    assert sfn.calls == 0


def test_polling_ends_with_the_invocation():
    sfn = FakeStepFunctions("RUNNING")
    with ExecutionWatch(sfn, ARN, poll_s=0.01):
        _wait_for(lambda: sfn.calls >= 1)
    calls = sfn.calls
    time.sleep(0.05)
    assert sfn.calls <= calls + 1
