"""Deferral: poll one execution from the triggerer until it ends, holding no worker slot.

Written on ``BaseTrigger`` rather than the provider's waiter trigger because its waiter
polls on through TIMED_OUT and counts PENDING_REDRIVE as neither state; here every
terminal status ends the wait at the first poll that sees it. It also stops the execution
when the task is killed (``on_kill``) or its deferral times out (apache/airflow#60517:
Airflow's own deferral timeout leaves the remote job running), and logs progress.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from step_patterns.hooks import StepPatternsHook
from step_patterns.progress import ChunkedIteratorProgress

SUCCEEDED = "SUCCEEDED"
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"})


class ExecutionTrigger(BaseTrigger):
    """Fires once the execution ends (or ``timeout_at``, epoch seconds, passes: then stops it)."""

    def __init__(
        self,
        execution_arn: str,
        poll_interval: float = 10.0,
        timeout_at: float | None = None,
        progress: dict[str, Any] | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ):
        super().__init__()
        self.execution_arn = execution_arn
        self.poll_interval = poll_interval
        self.timeout_at = timeout_at
        self.progress = progress
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_arn": self.execution_arn,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "progress": self.progress,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def hook_kwargs(self) -> dict[str, Any]:
        # All connection settings travel with the trigger (apache/airflow#72144 drops them).
        return {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name, "verify": self.verify,
                "config": self.botocore_config}

    def hook(self) -> StepPatternsHook:
        return StepPatternsHook(**self.hook_kwargs())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        progress = ChunkedIteratorProgress(self.progress) if self.progress else None
        async with await self.hook().get_async_conn() as client:
            while True:
                # Shielded: Airflow calls on_kill only when the cancellation that reaches this
                # coroutine still carries its "user action" message, and HTTP client internals
                # (timeouts) re-raise cancellations without it. Cancelled here, the shield's
                # own future raises with the message; the poll in flight just finishes.
                event, line = await asyncio.shield(self._poll(client, progress))
                if event is not None:
                    yield TriggerEvent(event)
                    return
                self.log.info(line)
                await asyncio.sleep(self.poll_interval)

    async def _poll(self, client: Any, progress: ChunkedIteratorProgress | None) -> tuple[dict | None, str]:
        """One poll: the event to fire (if the wait is over), else the progress line to log."""
        execution = await client.describe_execution(executionArn=self.execution_arn)
        status = execution["status"]
        if status == SUCCEEDED or status in FAILED_STATUSES:
            return execution_event(execution), ""
        if self.timeout_at is not None and time.time() >= self.timeout_at:
            cause = "the Airflow task's deferral_timeout passed"
            await _stop(client, self.execution_arn, cause)
            self.log.info("Stopped %s: %s", self.execution_arn, cause)
            return {**execution_event(execution), "status": "error", "execution_status": "ABORTED",
                    "error": "DeferralTimeout", "cause": cause}, ""
        line = f"Execution {self.execution_arn} is {status}"
        if progress is not None:
            line += "; " + await progress.line(client, self)
        return None, line

    async def on_kill(self) -> None:
        """The task was marked failed, cleared or killed while deferred: stop the execution."""
        async with await self.hook().get_async_conn() as client:
            execution = await client.describe_execution(executionArn=self.execution_arn)
            if execution["status"] == "RUNNING":
                await _stop(client, self.execution_arn, "the Airflow task was killed while deferred")
                self.log.info("Stopped execution %s (task killed)", self.execution_arn)


async def _stop(client: Any, execution_arn: str, cause: str) -> None:
    await client.stop_execution(executionArn=execution_arn, error="AirflowTaskStopped", cause=cause)


def execution_event(execution: dict[str, Any]) -> dict[str, Any]:
    """The small, JSON-safe part of DescribeExecution the operator needs."""
    output = execution.get("output")
    return {
        "status": "success" if execution["status"] == SUCCEEDED else "error",
        "execution_arn": execution["executionArn"],
        "execution_status": execution["status"],
        "output": json.loads(output) if output else None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
