"""WaitLoopOperator: run a long Redshift statement through the wait-state loop machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from step_lambdas.contract import checks
from step_patterns.asl import WaitLoopSettings, build_wait_loop
from step_patterns.operators.base import StateMachineOperator
from step_patterns.operators.statement import STATEMENT_TEMPLATE_FIELDS, RedshiftStatementMixin

VARIANTS = ("lambda", "sdk")
_PLACEHOLDER_ARN = "arn:aws:lambda:us-east-1:000000000000:function:placeholder"
# The builder's settings by the names of this operator's parameters, for its messages.
_PARAMETER_NAMES = (("min_seconds", "min_poll_seconds"), ("max_seconds", "max_poll_seconds"),
                    ("factor", "backoff_factor"), ("timeout_seconds", "machine_timeout_seconds"))


class WaitLoopOperator(RedshiftStatementMixin, StateMachineOperator):
    """Run ``sql`` on Redshift through the Data API and wait for it in a Choice/Wait loop.

    The task's XCom is the statement summary (``statement_id``, ``status``,
    ``result_rows``, ``has_result_set``, ``duration_ms``/``duration_ns``, ``query``);
    the task fails with Redshift's error text when the statement fails or is aborted.

    The statement's parameters (``sql``, ``parameters``, ``database``,
    ``cluster_identifier`` or ``workgroup_name``, ``secret_arn`` or ``db_user`` or
    ``redshift_conn_id``) are
    described in :class:`~step_patterns.operators.statement.RedshiftStatementMixin`.
    :param variant: ``"lambda"`` (bundled statement Lambdas) or ``"sdk"`` (Step Functions
        calls the Data API itself; no Lambda).
    :param min_poll_seconds, max_poll_seconds, backoff_factor: the poll waits grow from min
        to max by this factor.
    :param max_polls: poll budget; the execution fails with ``StatementPollBudgetExhausted``
        beyond it.
    :param machine_timeout_seconds: the state machine's ``TimeoutSeconds``.
    """

    template_fields: Sequence[str] = (*StateMachineOperator.template_fields, *STATEMENT_TEMPLATE_FIELDS)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}

    def __init__(
        self,
        *,
        sql: str,
        database: str | None = None,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        secret_arn: str | None = None,
        db_user: str | None = None,
        redshift_conn_id: str | None = None,
        parameters: dict[str, Any] | list[dict[str, Any]] | None = None,
        variant: str = "lambda",
        min_poll_seconds: int = 2,
        max_poll_seconds: int = 60,
        backoff_factor: float = 2.0,
        max_polls: int = 600,
        machine_timeout_seconds: int = 36_000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.init_statement(
            sql=sql, database=database, cluster_identifier=cluster_identifier,
            workgroup_name=workgroup_name, secret_arn=secret_arn, db_user=db_user, parameters=parameters,
            redshift_conn_id=redshift_conn_id,
        )
        with self.checking() as check:
            check(checks.one_of, "variant", variant, VARIANTS)
        self.variant = variant
        self.min_poll_seconds = min_poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self.backoff_factor = backoff_factor
        self.max_polls = max_polls
        self.machine_timeout_seconds = machine_timeout_seconds
        with self.checking() as check:  # bad poll settings are refused when the DAG is parsed
            try:  # the builder checks them, by our parameter names (_PARAMETER_NAMES)
                self._settings(_PLACEHOLDER_ARN, _PLACEHOLDER_ARN)
            except ValueError as error:
                check.refuse(str(error))

    def _settings(self, starter_arn: str, status_arn: str) -> WaitLoopSettings:
        if self.secret_arn:
            auth = "secret_arn"
        elif self.db_user:
            auth = "db_user"
        else:
            auth = "iam"
        return WaitLoopSettings(
            variant=self.variant,
            statement_starter_arn=starter_arn,
            statement_status_arn=status_arn,
            sdk_target="cluster" if self.cluster_identifier else "workgroup",
            sdk_auth=auth,
            sdk_with_parameters=bool(self.parameters),
            min_seconds=self.min_poll_seconds,
            max_seconds=self.max_poll_seconds,
            factor=self.backoff_factor,
            max_polls=self.max_polls,
            timeout_seconds=self.machine_timeout_seconds,
            names=_PARAMETER_NAMES,
        )

    def build_definition(self) -> dict[str, Any]:
        if self.variant == "lambda":
            settings = self._settings(self.function_arn("statement-start"), self.function_arn("statement-status"))
        else:
            settings = self._settings(_PLACEHOLDER_ARN, _PLACEHOLDER_ARN)
        return build_wait_loop(settings).to_dict()

    def result_from_output(self, output: dict[str, Any]) -> dict[str, Any]:
        """The summary with ``duration_ms`` always set (the SDK variant reports nanoseconds)."""
        summary = dict(output)
        if summary.get("duration_ms") is None and summary.get("duration_ns") is not None:
            summary["duration_ms"] = max(0, summary["duration_ns"]) // 1_000_000
        return summary

    def build_input(self, context: Context) -> dict[str, Any]:
        return self.statement_input()
