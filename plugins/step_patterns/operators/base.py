"""What every step-patterns operator does: ensure the machine, start or attach, defer, report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.links.step_function import (
    StateMachineDetailsLink,
    StateMachineExecutionsDetailsLink,
)
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException

from step_patterns.hooks import StepPatternsHook
from step_patterns.naming import stable_name
from step_patterns.triggers import ExecutionTrigger


class ExecutionFailed(AirflowException):
    """The Step Functions execution behind the task did not succeed."""


class StateMachineOperator(AwsBaseOperator[StepPatternsHook]):
    """Base of the pattern operators; subclasses say which machine and which input.

    :param role_arn: IAM role Step Functions assumes to run the machine.
    :param state_machine_name: name of the machine to create or update; default derived
        from the DAG and task ids, so each task owns one machine.
    :param function_prefix: name prefix of the deployed bundle functions
        (``<prefix>-query-executor``, ...).
    :param poll_interval: seconds between status polls while deferred.
    :param deferral_timeout: how long to wait for the execution before failing the task.
    """

    aws_hook_class = StepPatternsHook
    template_fields: Sequence[str] = aws_template_fields("role_arn", "state_machine_name")
    operator_extra_links = (StateMachineDetailsLink(), StateMachineExecutionsDetailsLink())
    ui_color = "#f9c915"

    def __init__(
        self,
        *,
        role_arn: str,
        state_machine_name: str | None = None,
        function_prefix: str = "step-patterns",
        poll_interval: float = 10.0,
        deferral_timeout: timedelta | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_interval must be > 0, got {poll_interval}")
        self.role_arn = role_arn
        self.state_machine_name = state_machine_name
        self.function_prefix = function_prefix
        self.poll_interval = poll_interval
        self.deferral_timeout = deferral_timeout

    # -- what a pattern provides ----------------------------------------
    def build_definition(self) -> dict[str, Any]:
        raise NotImplementedError

    def build_input(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def result_from_output(self, output: Any) -> Any:
        """The XCom value of a successful execution (default: its output)."""
        return output

    def function_arn(self, key: str) -> str:
        """ARN of a bundle function (``key`` as in ``step_lambdas.manifest``) in this account."""
        hook = self.hook
        return (
            f"arn:{hook.conn_partition}:lambda:{hook.conn_region_name}:{hook.account_id}:"
            f"function:{self.function_prefix}-{key}"
        )

    # -- the shared flow ------------------------------------------------
    def execute(self, context: Context) -> Any:
        machine_name = self.state_machine_name or stable_name("step-patterns", self.dag_id, self.task_id)
        machine_arn, _ = self.hook.ensure_state_machine(machine_name, self.build_definition(), self.role_arn)
        self._persist_link(StateMachineDetailsLink, context, state_machine_arn=machine_arn)

        execution_input = self.build_input(context)
        run_id = context["run_id"]
        started = self.hook.start_or_attach(
            machine_arn, stable_name(self.dag_id, self.task_id, run_id), execution_input
        )
        if started.attached and started.status != "RUNNING":
            # An execution of this run already ended: this try (a retry or a cleared task)
            # runs the pattern again, under a name of its own. Rerunning a sync is safe: the
            # sync state makes already-synced records cost nothing and creates nothing twice.
            try_number = context["ti"].try_number
            started = self.hook.start_or_attach(
                machine_arn,
                stable_name(self.dag_id, self.task_id, run_id, suffix=f"try{try_number}"),
                execution_input,
            )
        self._persist_link(StateMachineExecutionsDetailsLink, context, execution_arn=started.arn)
        self.log.info(
            "%s execution %s; waiting for it in the triggerer",
            "Attached to" if started.attached else "Started",
            started.arn,
        )
        self.defer(
            trigger=ExecutionTrigger(
                execution_arn=started.arn,
                poll_interval=self.poll_interval,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            timeout=self.deferral_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or "execution_status" not in event:
            raise AirflowException(f"{self.task_id}: trigger returned no execution status: {event!r}")
        if event["status"] != "success":
            raise ExecutionFailed(describe_failure(event))
        self.log.info("Execution %s succeeded", event["execution_arn"])
        return self.result_from_output(event["output"])

    def _persist_link(self, link, context: Context, **arn) -> None:
        link.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            **arn,
        )


def describe_failure(event: dict[str, Any]) -> str:
    """One line a person can act on: which execution, how it ended, the named error and why."""
    return (
        f"Step Functions execution {event['execution_arn']} ended {event['execution_status']}: "
        f"{event.get('error') or 'no error name'}: {readable_cause(event.get('cause'))}"
    )


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is its JSON error payload (our Fail states prefix it with the
    original error name, ``"Name: {...}"``): show the message, not the JSON and stack."""
    if not cause:
        return "no cause given"
    _, brace, rest = cause.partition("{")
    try:
        payload = json.loads(brace + rest) if brace else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "errorMessage" in payload:
        return f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    return cause
