"""The Redshift statement both pattern operators take: fields, parse-time checks, Data API input."""

from __future__ import annotations

from typing import Any

from step_lambdas.contract import checks
from step_lambdas.contract.events import StatementSpec, one_target, parse_parameters
from step_patterns.connections import OwnedSecretsHook, RedshiftConnectionHook

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
    :param db_user: a database user (temporary credentials; clusters only), or
    :param redshift_conn_id: an Airflow ``redshift`` connection instead of ``secret_arn``/``db_user``:
        its Login/Password go to a Secrets Manager secret the task keeps in step
        (``step-patterns/redshift/<conn_id>``); Schema is the database and extra
        ``cluster_identifier`` (or ``is_serverless`` + ``serverless_work_group``) the target when
        the task gives none (see :class:`~step_patterns.connections.RedshiftConnectionHook`).
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
        redshift_conn_id: str | None = None,
    ) -> None:
        with self.checking() as check:  # the rules the statement Lambdas apply (StatementSpec)
            if redshift_conn_id and (secret_arn or db_user):
                check.refuse("give either redshift_conn_id or secret_arn/db_user, not both")
            if not (redshift_conn_id and not (cluster_identifier or workgroup_name)):
                try:  # with a connection, the target may come from it instead
                    one_target(cluster_identifier, workgroup_name)
                except ValueError as error:
                    check.refuse(str(error))
            if not database and not redshift_conn_id:
                check.refuse("database is required (or a redshift_conn_id whose Schema names it)")
            check(checks.text, "sql", sql)
        self.sql = sql
        self.database = database
        self.cluster_identifier = cluster_identifier
        self.workgroup_name = workgroup_name
        self.secret_arn = secret_arn
        self.db_user = db_user
        self.parameters = parameters
        self.redshift_conn_id = redshift_conn_id

    def resolve_connections(self, secrets: OwnedSecretsHook) -> None:
        if self.redshift_conn_id:
            target = RedshiftConnectionHook(self.redshift_conn_id).target(
                secrets, database=self.database, cluster_identifier=self.cluster_identifier,
                workgroup_name=self.workgroup_name,
            )
            self.database, self.secret_arn, self.db_user = target.database, target.secret_arn, target.db_user
            self.cluster_identifier, self.workgroup_name = target.cluster_identifier, target.workgroup_name
        super().resolve_connections(secrets)  # type: ignore[misc]

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
