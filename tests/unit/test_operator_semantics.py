"""How retries, clears, kills, timeouts and bad parameters map onto executions (no AWS).

The Step Functions side is a recording fake: these tests pin the operator's decisions;
the same flows run for real against the local cloud in tests/e2e and tests/scheduler.
RedriveExecution is exercised only here: moto does not implement it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from airflow.sdk import DAG

from step_patterns.hooks import StartedExecution
from step_patterns.operators import ChunkedIteratorOperator, WaitLoopOperator
from step_patterns.operators.base import EXECUTION_ARN_KEY
from step_patterns.triggers import ExecutionTrigger

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:m"


class FakeConn:
    def __init__(self, redrive_error: Exception | None = None):
        self.redriven: list[str] = []
        self.redrive_error = redrive_error

    def redrive_execution(self, executionArn):
        if self.redrive_error:
            raise self.redrive_error
        self.redriven.append(executionArn)


class FakeHook:
    """Executions by name with a status; start_or_attach behaves like StartExecution."""

    def __init__(self, statuses: dict[str, str] | None = None, redrive_error=None):
        self.statuses = dict(statuses or {})
        self.started: list[str] = []
        self.conn = FakeConn(redrive_error)

    def start_or_attach(self, machine_arn, name, execution_input):
        arn = f"{machine_arn}:{name}"
        if arn in self.statuses:
            return StartedExecution(arn=arn, attached=True, status=self.statuses[arn])
        self.statuses[arn] = "RUNNING"
        self.started.append(name)
        return StartedExecution(arn=arn, attached=False, status="RUNNING")

    def describe_execution(self, arn):
        return {"status": self.statuses[arn]}


class Store(dict):
    def set(self, key, value):
        self[key] = value


class TI:
    def __init__(self, try_number):
        self.try_number = try_number


def _operator(**kwargs):
    with DAG("d", schedule=None):
        return WaitLoopOperator(
            task_id="t", sql="SELECT 1", database="dev", cluster_identifier="c", role_arn="arn:role", **kwargs
        )


def _choose(op, hook, store, try_number=1):
    op.__dict__["hook"] = hook  # the operator's cached hook
    context = {"run_id": "scheduled__2026-11-27", "ti": TI(try_number), "task_state_store": store}
    return op._choose_execution(context, MACHINE)


def test_first_try_starts_one_execution_named_from_the_run():
    hook, store = FakeHook(), Store()
    chosen = _choose(_operator(), hook, store)
    assert chosen.how == "Started" and len(hook.started) == 1
    assert hook.started[0].startswith("d-t-scheduled__2026-11-27-")


def test_retry_while_the_execution_runs_attaches_instead_of_starting_another():
    hook, store = FakeHook(), Store()
    op = _operator()
    first = _choose(op, hook, store)
    store[EXECUTION_ARN_KEY] = first.arn
    again = _choose(_operator(), hook, store, try_number=2)
    assert again.arn == first.arn and again.how.startswith("Attached")
    assert len(hook.started) == 1


def test_retry_after_a_stopped_execution_redrives_it_by_default():
    hook, store = FakeHook(), Store()
    first = _choose(_operator(), hook, store)
    store[EXECUTION_ARN_KEY] = first.arn
    hook.statuses[first.arn] = "ABORTED"
    again = _choose(_operator(), hook, store, try_number=2)
    assert hook.conn.redriven == [first.arn]
    assert again.arn == first.arn and again.how.startswith("Redrove")


def test_retry_after_a_failed_execution_runs_anew_since_a_redrive_would_resume_at_its_fail_state():
    hook, store = FakeHook(), Store()
    first = _choose(_operator(), hook, store)
    store[EXECUTION_ARN_KEY] = first.arn
    hook.statuses[first.arn] = "FAILED"
    again = _choose(_operator(), hook, store, try_number=2)
    assert hook.conn.redriven == []
    assert again.arn.endswith("-try2") and again.how == "Previous execution FAILED; started"


def test_restart_mode_starts_a_new_execution_under_the_try_number():
    hook, store = FakeHook(), Store()
    first = _choose(_operator(on_failed_execution="restart"), hook, store)
    store[EXECUTION_ARN_KEY] = first.arn
    hook.statuses[first.arn] = "ABORTED"
    again = _choose(_operator(on_failed_execution="restart"), hook, store, try_number=2)
    assert hook.conn.redriven == []
    assert again.arn != first.arn and again.arn.endswith("-try2")


def test_an_execution_that_cannot_be_redriven_is_replaced():
    hook, store = FakeHook(redrive_error=RuntimeError("ExecutionNotRedrivable")), Store()
    first = _choose(_operator(), hook, store)
    store[EXECUTION_ARN_KEY] = first.arn
    hook.statuses[first.arn] = "TIMED_OUT"
    again = _choose(_operator(), hook, store, try_number=3)
    assert again.arn.endswith("-try3")


def test_a_cleared_task_whose_execution_succeeded_runs_again():
    hook = FakeHook()
    first = _choose(_operator(), hook, Store())
    hook.statuses[first.arn] = "SUCCEEDED"
    again = _choose(_operator(), hook, Store(), try_number=2)  # store lost: found by name
    assert again.arn.endswith("-try2") and len(hook.started) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": "twenty per second"}, "rate 'twenty per second' is not N/Ws"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"map_mode": "PARALLEL"}, "map_mode must be one of DISTRIBUTED, INLINE"),
    ({"workgroup_name": "wg"}, "give exactly one of cluster_identifier"),
    ({"max_concurrency": 30, "rate": "20/2s"}, "cannot be split between 30 concurrent chunk syncers"),
    ({"on_failed_execution": "retry"}, "on_failed_execution must be one of"),
    ({"poll_interval": 0}, "poll_interval must be a number of seconds > 0"),
])
def test_bad_parameters_are_refused_when_the_dag_is_parsed(kwargs, message):
    base = dict(task_id="sync", sql="SELECT 1", database="dev", cluster_identifier="c", role_arn="r",
                bucket="b", pipedrive_secret_arn="arn:secret")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        ChunkedIteratorOperator(**{**base, **kwargs})
    assert str(error.value).startswith("sync: ")


def test_bad_poll_settings_of_the_wait_loop_are_refused_at_parse_time():
    with pytest.raises(ValueError, match="t: .*min"):
        _operator(min_poll_seconds=90, max_poll_seconds=30)


class FakeAsyncClient:
    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.stopped: list[tuple[str, str]] = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    async def describe_execution(self, executionArn):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"executionArn": executionArn, "status": status, "error": "E" if status != "SUCCEEDED" else None,
                "cause": "why"}

    async def stop_execution(self, executionArn, error, cause):
        self.stopped.append((executionArn, error))
        self.statuses = ["ABORTED"]


def _run_trigger(trigger, client):
    async def conn():
        return client

    trigger.hook = lambda: type("H", (), {"get_async_conn": staticmethod(conn)})()

    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first_event())


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"])
def test_trigger_fails_fast_on_every_unsuccessful_end(status):
    event = _run_trigger(ExecutionTrigger("arn:x", poll_interval=0.01), FakeAsyncClient(["RUNNING", status]))
    assert event["status"] == "error" and event["execution_status"] == status
    assert (event["error"], event["cause"]) == ("E", "why")


def test_trigger_stops_the_execution_when_the_deferral_times_out():
    client = FakeAsyncClient(["RUNNING"])
    event = _run_trigger(ExecutionTrigger("arn:x", poll_interval=0.01, timeout_at=time.time() + 0.05), client)
    assert client.stopped == [("arn:x", "AirflowTaskStopped")]
    assert event["status"] == "error" and event["error"] == "DeferralTimeout"


def test_trigger_on_kill_stops_a_running_execution_only():
    for statuses, expected in ((["RUNNING"], 1), (["SUCCEEDED"], 0)):
        client = FakeAsyncClient(statuses)
        trigger = ExecutionTrigger("arn:x")

        async def conn():
            return client

        trigger.hook = lambda: type("H", (), {"get_async_conn": staticmethod(conn)})()
        asyncio.run(trigger.on_kill())
        assert len(client.stopped) == expected


def test_deferral_timeout_must_be_a_timedelta():
    with pytest.raises(ValueError, match="deferral_timeout must be a datetime.timedelta"):
        _operator(deferral_timeout=600)
    assert _operator(deferral_timeout=timedelta(minutes=10)).deferral_timeout == timedelta(minutes=10)
