"""Wait for a Step Functions execution started elsewhere, in the triggerer.

Unlike the provider's ``StepFunctionExecutionSensor`` it is deferrable, fails on every
unsuccessful end (FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE) instead of treating what it
does not know as success, and accepts a state machine plus execution name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.links.step_function import StateMachineExecutionsDetailsLink
from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import Context

from step_patterns.hooks import StepPatternsHook
from step_patterns.operators.base import ExecutionFailed, describe_failure
from step_patterns.triggers import FAILED_STATUSES, SUCCEEDED, ExecutionTrigger, execution_event


class StepFunctionsExecutionSensor(AwsBaseSensor[StepPatternsHook]):
    """Succeeds when the execution succeeds; fails the task with its error and cause otherwise.

    :param execution_arn: the execution (templated), or
    :param state_machine_arn: its state machine (templated) together with
    :param execution_name: the execution's name (templated).
    :param poll_interval: seconds between polls in the triggerer.
    The execution's output is the task's XCom.
    """

    aws_hook_class = StepPatternsHook
    template_fields: Sequence[str] = aws_template_fields("execution_arn", "state_machine_arn", "execution_name")
    operator_extra_links = (StateMachineExecutionsDetailsLink(),)
    ui_color = "#f9c915"

    def __init__(
        self,
        *,
        execution_arn: str | None = None,
        state_machine_arn: str | None = None,
        execution_name: str | None = None,
        poll_interval: float = 30.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if bool(execution_arn) == bool(state_machine_arn and execution_name):
            raise ValueError(
                f"{self.task_id}: give execution_arn, or state_machine_arn and execution_name (not both)"
            )
        if poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_interval must be > 0, got {poll_interval}")
        self.execution_arn = execution_arn
        self.state_machine_arn = state_machine_arn
        self.execution_name = execution_name
        self.poll_interval = poll_interval

    def _arn(self) -> str:
        return self.execution_arn or self.hook.execution_arn(self.state_machine_arn, self.execution_name)

    def execute(self, context: Context) -> Any:
        arn = self._arn()
        StateMachineExecutionsDetailsLink.persist(
            context=context, operator=self, region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition, execution_arn=arn,
        )
        execution = self.hook.describe_execution(arn)
        if execution["status"] == SUCCEEDED or execution["status"] in FAILED_STATUSES:
            return self.execute_complete(context, execution_event(execution))
        self.defer(
            trigger=ExecutionTrigger(
                execution_arn=arn, poll_interval=self.poll_interval, aws_conn_id=self.aws_conn_id,
                region_name=self.region_name, verify=self.verify, botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            timeout=self.timeout if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or "execution_status" not in event:
            raise ExecutionFailed(f"{self.task_id}: trigger returned no execution status: {event!r}")
        if event["status"] != "success":
            raise ExecutionFailed(describe_failure(event))
        return event["output"]

    def poke(self, context: Context) -> bool:  # the sensor always defers; poke is never used
        raise NotImplementedError("StepFunctionsExecutionSensor is deferrable only")
