"""The Step Functions calls our operators need, on top of the amazon provider's hook."""

from __future__ import annotations

import json
from dataclasses import dataclass

from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook


@dataclass(frozen=True)
class StartedExecution:
    arn: str
    attached: bool  # True when an execution of that name already existed
    status: str


class StepPatternsHook(StepFunctionHook):
    """``StepFunctionHook`` plus create-or-update of machines and start-or-attach of executions."""

    def state_machine_arn(self, name: str) -> str:
        return f"arn:{self.conn_partition}:states:{self.conn_region_name}:{self.account_id}:stateMachine:{name}"

    def execution_arn(self, state_machine_arn: str, name: str) -> str:
        prefix, machine = state_machine_arn.split(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def ensure_state_machine(self, name: str, definition: dict, role_arn: str) -> tuple[str, bool]:
        """Create the machine, or update it only when its definition or role changed.

        Returns ``(arn, changed)``.
        """
        arn = self.state_machine_arn(name)
        rendered = json.dumps(definition, sort_keys=True)
        try:
            current = self.conn.describe_state_machine(stateMachineArn=arn)
        except self.conn.exceptions.StateMachineDoesNotExist:
            self.log.info("Creating state machine %s", arn)
            created = self.conn.create_state_machine(
                name=name, definition=rendered, roleArn=role_arn, type="STANDARD"
            )
            return created["stateMachineArn"], True
        same_definition = json.loads(current["definition"]) == definition
        if same_definition and current["roleArn"] == role_arn:
            self.log.info("State machine %s is up to date", arn)
            return arn, False
        self.log.info("Updating state machine %s (definition or role changed)", arn)
        self.conn.update_state_machine(stateMachineArn=arn, definition=rendered, roleArn=role_arn)
        return arn, True

    def start_or_attach(self, state_machine_arn: str, name: str, execution_input: dict) -> StartedExecution:
        """Start the execution ``name``, or find the one of that name that already exists.

        Standard workflows reserve an execution name for 90 days, so a retried Airflow task
        that derives the same name lands on its first execution instead of a duplicate.
        """
        try:
            arn = self.start_execution(state_machine_arn, name, execution_input)
            return StartedExecution(arn=arn, attached=False, status="RUNNING")
        except self.conn.exceptions.ExecutionAlreadyExists:
            arn = self.execution_arn(state_machine_arn, name)
            status = self.describe_execution(arn)["status"]
            self.log.info("Execution %s already exists (%s): attaching to it", arn, status)
            return StartedExecution(arn=arn, attached=True, status=status)



def stop_quietly(hook: StepFunctionHook, execution_arn: str, cause: str, log) -> None:
    """Stop a running execution; one that already ended is left as it is."""
    try:
        status = hook.conn.describe_execution(executionArn=execution_arn)["status"]
        if status == "RUNNING":
            hook.conn.stop_execution(executionArn=execution_arn, error="AirflowTaskStopped", cause=cause)
            log.info("Stopped execution %s: %s", execution_arn, cause)
    except Exception as error:
        log.warning("Could not stop execution %s: %s", execution_arn, error)
