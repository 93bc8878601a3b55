"""The deferrable sensor for an execution started elsewhere (recording fakes, no AWS)."""

from __future__ import annotations

import pytest
from airflow.sdk import DAG

from step_patterns.operators.base import ExecutionFailed
from step_patterns.sensors import StepFunctionsExecutionSensor
from step_patterns.triggers import ExecutionTrigger

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:nightly"


class Hook:
    conn_region_name = "us-east-1"
    conn_partition = "aws"

    def __init__(self, status, output=None):
        self.status, self.output, self.described = status, output, []

    def execution_arn(self, machine_arn, name):
        prefix, machine = machine_arn.split(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def describe_execution(self, arn):
        self.described.append(arn)
        return {"executionArn": arn, "status": self.status, "output": self.output,
                "error": "States.TaskFailed" if self.status != "SUCCEEDED" else None, "cause": "boom"}


def _sensor(hook, **kwargs):
    with DAG("d", schedule=None):
        sensor = StepFunctionsExecutionSensor(task_id="wait", **kwargs)
    sensor.__dict__["hook"] = hook
    return sensor


class Deferred(Exception):
    pass


def _context():
    return {"ti": None}


def test_needs_an_arn_or_a_machine_and_a_name():
    with pytest.raises(ValueError, match="give execution_arn, or state_machine_arn and execution_name"):
        _sensor(Hook("RUNNING"), state_machine_arn=MACHINE)


def test_a_succeeded_execution_returns_its_output_without_deferring(monkeypatch):
    hook = Hook("SUCCEEDED", output='{"rows": 3}')
    sensor = _sensor(hook, state_machine_arn=MACHINE, execution_name="run-1")
    monkeypatch.setattr("step_patterns.sensors.execution.StateMachineExecutionsDetailsLink.persist", lambda **kw: None)
    assert sensor.execute(_context()) == {"rows": 3}
    assert hook.described == ["arn:aws:states:us-east-1:123456789012:execution:nightly:run-1"]


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"])
def test_every_unsuccessful_end_fails_the_task(monkeypatch, status):
    sensor = _sensor(Hook(status), execution_arn="arn:x")
    monkeypatch.setattr("step_patterns.sensors.execution.StateMachineExecutionsDetailsLink.persist", lambda **kw: None)
    with pytest.raises(ExecutionFailed, match=f"ended {status}: States.TaskFailed: boom"):
        sensor.execute(_context())


def test_a_running_execution_is_waited_for_in_the_triggerer(monkeypatch):
    sensor = _sensor(Hook("RUNNING"), execution_arn="arn:x", poll_interval=5)
    monkeypatch.setattr("step_patterns.sensors.execution.StateMachineExecutionsDetailsLink.persist", lambda **kw: None)
    deferred = {}

    def defer(**kwargs):
        deferred.update(kwargs)
        raise Deferred

    sensor.defer = defer
    with pytest.raises(Deferred):
        sensor.execute(_context())
    trigger = deferred["trigger"]
    assert isinstance(trigger, ExecutionTrigger)
    assert (trigger.execution_arn, trigger.poll_interval) == ("arn:x", 5)
