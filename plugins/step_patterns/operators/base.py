"""What every step-patterns operator does: ensure the machine, start or attach, defer, report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
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

from step_lambdas.contract import checks, defaults
from step_lambdas.contract.error_text import readable_cause
from step_patterns.connections import ConnectionProblem, OwnedSecretsHook
from step_patterns.hooks import StartedExecution, StepPatternsHook, stop_quietly
from step_patterns.naming import stable_name
from step_patterns.triggers import ExecutionTrigger

EXECUTION_ARN_KEY = "step_patterns_execution_arn"
# Redrive resumes an execution at its unsuccessful step. Our machines catch every error into
# a named Fail state, so a FAILED execution would resume at that Fail state and fail again at
# once: it is run anew instead. A stopped (ABORTED) or TIMED_OUT one resumes where it stood,
# e.g. only the chunks not yet synced.
REDRIVABLE_STATUSES = frozenset({"TIMED_OUT", "ABORTED"})
ON_FAILED_EXECUTION = ("redrive", "restart")


@dataclass(frozen=True)
class ChosenExecution:
    arn: str
    how: str  # for the task log: started, attached, redriven


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
    :param deferral_timeout: how long to wait for the execution; then it is stopped and
        the task fails.
    :param on_failed_execution: when a retry or a cleared task finds this run's execution
        stopped or timed out: ``"redrive"`` (default) resumes it where it stood (Step Functions
        RedriveExecution; falls back to a new execution when it cannot be redriven),
        ``"restart"`` starts a new one. An execution that FAILED is always run anew: it ended
        in one of the machine's named Fail states, where a redrive would only fail again.
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
        function_prefix: str = defaults.FUNCTION_PREFIX,
        poll_interval: float = 10.0,
        deferral_timeout: timedelta | None = None,
        on_failed_execution: str = "redrive",
        **kwargs,
    ):
        super().__init__(**kwargs)
        with self.checking() as check:
            check(checks.number, "poll_interval", poll_interval, exclusive=True, says="a number of seconds > 0")
            check(checks.one_of, "on_failed_execution", on_failed_execution, ON_FAILED_EXECUTION)
            if deferral_timeout is not None and not isinstance(deferral_timeout, timedelta):
                check.refuse(f"deferral_timeout must be a datetime.timedelta, got {deferral_timeout!r}")
        self.on_failed_execution = on_failed_execution
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

    def check_values(self, *, rendered: bool) -> None:
        """Check the parameters that may be templated: with ``rendered=False`` (``__init__``)
        literal values only, with ``rendered=True`` (``execute``) the rendered ones, with the
        same checks (see :meth:`checking`). Default: nothing to check."""

    def checking(self, *, rendered: bool = True) -> "ParameterChecks":
        """Collect the problems of several checks; on leaving, one ValueError names them all,
        starting with the task id. Templated values are left for ``execute`` unless ``rendered``."""
        return ParameterChecks(self, rendered)

    def function_arn(self, key: str) -> str:
        """ARN of a bundle function (``key`` as in ``step_lambdas.contract.defaults``) in this account."""
        hook = self.hook
        return (
            f"arn:{hook.conn_partition}:lambda:{hook.conn_region_name}:{hook.account_id}:"
            f"function:{defaults.function_name(key, self.function_prefix)}"
        )

    def resolve_connections(self, secrets: OwnedSecretsHook) -> None:
        """Turn the task's Airflow connections into owned secret ARNs (see step_patterns.connections)."""

    # -- the shared flow ------------------------------------------------
    def execute(self, context: Context) -> Any:
        self.check_values(rendered=True)  # before the connections fill in what they stand for
        try:
            self.resolve_connections(OwnedSecretsHook(
                aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify,
                config=self.botocore_config,
            ))
        except ConnectionProblem as problem:
            raise AirflowException(f"{self.task_id}: {problem}") from None
        machine_name = self.state_machine_name or stable_name(defaults.MACHINE_NAME_PREFIX, self.dag_id, self.task_id)
        machine_arn, _ = self.hook.ensure_state_machine(machine_name, self.build_definition(), self.role_arn)
        self._persist_link(StateMachineDetailsLink, context, state_machine_arn=machine_arn)

        execution = self._choose_execution(context, machine_arn)
        store = context.get("task_state_store")
        if store is not None:  # survives retries and clears, unlike XCom
            store.set(EXECUTION_ARN_KEY, execution.arn)
        self._execution_arn = execution.arn
        self._persist_link(StateMachineExecutionsDetailsLink, context, execution_arn=execution.arn)
        self.log.info("%s execution %s; waiting for it in the triggerer", execution.how, execution.arn)
        timeout_at = time.time() + self.deferral_timeout.total_seconds() if self.deferral_timeout else None
        self.defer(
            trigger=ExecutionTrigger(
                execution_arn=execution.arn,
                poll_interval=self.poll_interval,
                timeout_at=timeout_at,
                progress=self.progress_source(context),
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            # The trigger stops the execution at timeout_at itself; Airflow's own deferral
            # timeout is only a backstop for a triggerer that is gone (it stops nothing).
            timeout=self.deferral_timeout + timedelta(minutes=5) if self.deferral_timeout else None,
        )

    def _choose_execution(self, context: Context, machine_arn: str) -> "ChosenExecution":
        """One execution per (dag, task, run): attach to it while it runs, else run again.

        The ARN of this task's latest execution is in the task state store; without one
        (first try) the name derived from dag_id, task_id and run_id finds it.
        """
        store = context.get("task_state_store")
        known_arn = store.get(EXECUTION_ARN_KEY) if store is not None else None
        run_id = context["run_id"]
        execution_input = self.build_input(context)
        if known_arn:
            status = self.hook.describe_execution(known_arn)["status"]
            if status == "RUNNING":
                return ChosenExecution(known_arn, "Attached to running")
            previous = StartedExecution(arn=known_arn, attached=True, status=status)
        else:
            previous = self.hook.start_or_attach(machine_arn, stable_name(self.dag_id, self.task_id, run_id), execution_input)
            if not previous.attached:
                return ChosenExecution(previous.arn, "Started")
            if previous.status == "RUNNING":
                return ChosenExecution(previous.arn, "Attached to running")
        # The execution of an earlier try ended. Stopped or timed out, and redrive chosen:
        # resume it where it stood. Otherwise (or when it cannot be redriven) run anew under
        # this try's name; rerunning is safe: the sync state makes nothing be created twice.
        if previous.status in REDRIVABLE_STATUSES and self.on_failed_execution == "redrive":
            try:
                self.hook.conn.redrive_execution(executionArn=previous.arn)
                return ChosenExecution(previous.arn, f"Redrove ({previous.status})")
            except Exception as error:  # not redrivable (too old, succeeded parts, quota)
                self.log.warning("Cannot redrive %s (%s); starting a new execution", previous.arn, error)
        try_number = context["ti"].try_number
        fresh = self.hook.start_or_attach(
            machine_arn, stable_name(self.dag_id, self.task_id, run_id, suffix=f"try{try_number}"), execution_input
        )
        return ChosenExecution(fresh.arn, f"Previous execution {previous.status}; started")

    def progress_source(self, context: Context) -> dict[str, Any] | None:
        """Where the trigger reads progress for its log lines (None: status only)."""
        return None

    def on_kill(self) -> None:
        """Killed before deferring (or in a non-deferred run): stop the execution too."""
        arn = getattr(self, "_execution_arn", None)
        if arn:
            stop_quietly(self.hook, arn, "Airflow task killed before it deferred", self.log)

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


class ParameterChecks:
    """``with operator.checking() as check: check(rule, name, value, ...)``: runs each contract
    rule (``rule(name, value, ...)``), keeps what it returns in ``check.values[name]`` and
    collects the problems; a templated field's value (Jinja) is left for ``execute`` unless
    rendered. On leaving: one ValueError ``"<task_id>: <problem>; <problem>"``."""

    def __init__(self, operator: StateMachineOperator, rendered: bool):
        self._operator, self._rendered = operator, rendered
        self.problems: list[str] = []
        self.values: dict[str, Any] = {}

    def __call__(self, rule, name: str, value: Any, *args, **kwargs) -> bool:
        """True when ``value`` passed ``rule``; False when it failed or waits for rendering."""
        if not self._rendered and name in self._operator.template_fields and checks.is_templated(value):
            return False
        try:
            self.values[name] = rule(name, value, *args, **kwargs)
        except ValueError as error:
            self.problems.append(str(error))
            return False
        return True

    def refuse(self, problem: str) -> None:
        self.problems.append(problem)

    def __enter__(self) -> "ParameterChecks":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None and self.problems:
            raise ValueError(f"{self._operator.task_id}: " + "; ".join(self.problems))


def describe_failure(event: dict[str, Any]) -> str:
    """One line a person can act on: which execution, how it ended, the named error and why."""
    return (
        f"Step Functions execution {event['execution_arn']} ended {event['execution_status']}: "
        f"{event.get('error') or 'no error name'}: {readable_cause(event.get('cause'))}"
    )
