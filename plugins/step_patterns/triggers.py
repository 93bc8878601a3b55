"""Deferral: poll one execution from the triggerer until it ends, holding no worker slot.

Written on ``BaseTrigger`` rather than the provider's waiter trigger because its waiter
polls on through TIMED_OUT and counts PENDING_REDRIVE as neither state; here every
terminal status ends the wait at the first poll that sees it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from step_patterns.hooks import StepPatternsHook

SUCCEEDED = "SUCCEEDED"
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"})


class ExecutionTrigger(BaseTrigger):
    def __init__(
        self,
        execution_arn: str,
        poll_interval: float = 10.0,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ):
        super().__init__()
        self.execution_arn = execution_arn
        self.poll_interval = poll_interval
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
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def hook(self) -> StepPatternsHook:
        # All connection settings travel with the trigger (apache/airflow#72144 drops them).
        return StepPatternsHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with await self.hook().get_async_conn() as client:
            while True:
                execution = await client.describe_execution(executionArn=self.execution_arn)
                status = execution["status"]
                if status == SUCCEEDED or status in FAILED_STATUSES:
                    yield TriggerEvent(_event(execution))
                    return
                self.log.info("Execution %s is %s", self.execution_arn, status)
                await asyncio.sleep(self.poll_interval)


def _event(execution: dict[str, Any]) -> dict[str, Any]:
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
