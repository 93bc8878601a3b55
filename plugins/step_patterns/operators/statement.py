"""The Redshift statement both pattern operators take: fields, parse-time checks, Data API input."""

from __future__ import annotations

from typing import Any

from step_lambdas.contract import checks
from step_lambdas.contract.events import StatementSpec, one_target, parse_parameters

STATEMENT_TEMPLATE_FIELDS = (
    "sql", "parameters", "database", "cluster_identifier", "workgroup_name", "secret_arn", "db_user",
)


class RedshiftStatementMixin:
    """Holds the statement's (templated) fields and renders them as the Lambdas' input.

    :param sql: the statement (templated). Values belong in ``parameters``, never in the SQL.
    :param parameters: named ``:params`` (templated): a dict or ``[{"name", "value"}]``.
    :param database: the Redshift database (templated).
    :param cluster_identifier: a provisioned cluster, or
    :param workgroup_name: a Redshift Serverless workgroup (give exactly one).
    :param secret_arn: Secrets Manager secret with the database credentials, or
    :param db_user: a database user (temporary credentials; clusters only).
    """

    task_id: str
    dag_id: str
    checking: Any  # StateMachineOperator.checking

    def init_statement(
        self,
        *,
        sql: str,
        database: str,
        cluster_identifier: str | None,
        workgroup_name: str | None,
        secret_arn: str | None,
        db_user: str | None,
        parameters: dict[str, Any] | list[dict[str, Any]] | None,
    ) -> None:
        with self.checking() as check:  # the rules the statement Lambdas apply (StatementSpec)
            try:
                one_target(cluster_identifier, workgroup_name)
            except ValueError as error:
                check.refuse(str(error))
            check(checks.text, "sql", sql)
        self.sql = sql
        self.database = database
        self.cluster_identifier = cluster_identifier
        self.workgroup_name = workgroup_name
        self.secret_arn = secret_arn
        self.db_user = db_user
        self.parameters = parameters

    def statement_input(self) -> dict[str, Any]:
        """The statement as the statement-start and query-executor Lambdas read it."""
        return StatementSpec(
            sql=self.sql,
            database=self.database,
            cluster_identifier=self.cluster_identifier or None,
            workgroup_name=self.workgroup_name or None,
            secret_arn=self.secret_arn or None,
            db_user=self.db_user or None,
            statement_name=f"{self.dag_id}.{self.task_id}"[:500],
            parameters=parse_parameters(self.parameters),
        ).to_event()
