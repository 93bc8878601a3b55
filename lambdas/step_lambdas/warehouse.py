"""Redshift Data API: statements described by a typed spec, and their status as a small summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINISHED = "FINISHED"
FAILED_STATES = frozenset({"FAILED", "ABORTED"})
RUNNING_STATES = frozenset({"SUBMITTED", "PICKED", "STARTED"})


class InvalidStatementSpec(ValueError):
    """The statement to run is malformed; raised before anything reaches Redshift."""


@dataclass(frozen=True)
class StatementSpec:
    sql: str
    database: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    secret_arn: str | None = None
    db_user: str | None = None
    statement_name: str | None = None
    parameters: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> "StatementSpec":
        if not isinstance(event, dict):
            raise InvalidStatementSpec(f"expected a JSON object, got {type(event).__name__}")
        sql = event.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidStatementSpec("'sql' must be a non-empty string")
        database = event.get("database")
        if not isinstance(database, str) or not database:
            raise InvalidStatementSpec("'database' must be a non-empty string")
        cluster, workgroup = event.get("cluster_identifier"), event.get("workgroup_name")
        if bool(cluster) == bool(workgroup):
            raise InvalidStatementSpec(
                "give exactly one of 'cluster_identifier' (provisioned) or "
                "'workgroup_name' (serverless)"
            )
        return cls(
            sql=sql,
            database=database,
            cluster_identifier=cluster or None,
            workgroup_name=workgroup or None,
            secret_arn=event.get("secret_arn") or None,
            db_user=event.get("db_user") or None,
            statement_name=event.get("statement_name") or None,
            parameters=parse_parameters(event.get("parameters")),
        )

    def execute_statement_kwargs(self) -> dict[str, Any]:
        """Arguments of ``redshift-data.execute_statement`` (values travel as parameters, never in SQL)."""
        kwargs: dict[str, Any] = {"Sql": self.sql, "Database": self.database}
        optional = {
            "ClusterIdentifier": self.cluster_identifier,
            "WorkgroupName": self.workgroup_name,
            "SecretArn": self.secret_arn,
            "DbUser": self.db_user,
            "StatementName": self.statement_name,
        }
        kwargs.update({key: value for key, value in optional.items() if value})
        if self.parameters:  # the Data API rejects an empty list
            kwargs["Parameters"] = [{"name": n, "value": v} for n, v in self.parameters]
        return kwargs


def parse_parameters(raw: Any) -> tuple[tuple[str, str], ...]:
    """``{name: value}`` or ``[{name, value}]`` as (name, text) pairs, as the Data API takes them."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [{"name": name, "value": value} for name, value in raw.items()]
    if not isinstance(raw, list):
        raise InvalidStatementSpec("'parameters' must be a list of {name, value} or an object")
    parsed = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidStatementSpec(f"parameters[{position}] must be an object with a 'name'")
        value = item.get("value")
        if value is None or isinstance(value, (dict, list)):
            raise InvalidStatementSpec(
                f"parameters[{position}] ({item['name']}): value must be a scalar, got {value!r}"
            )
        # The Data API takes every value as a string; booleans as SQL spells them.
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parsed.append((item["name"], text))
    return tuple(parsed)


def start_statement(client: Any, spec: StatementSpec) -> str:
    return client.execute_statement(**spec.execute_statement_kwargs())["Id"]


def describe_statement(client: Any, statement_id: str) -> dict[str, Any]:
    """The summary the wait loop branches on and the operator returns as XCom."""
    response = client.describe_statement(Id=statement_id)
    duration_ns = response.get("Duration", -1)
    return {
        "statement_id": response["Id"],
        "status": response["Status"],
        "error": response.get("Error") or None,
        "result_rows": response.get("ResultRows", -1),
        "has_result_set": bool(response.get("HasResultSet", False)),
        "duration_ms": duration_ns // 1_000_000 if duration_ns and duration_ns > 0 else 0,
        "query": response.get("QueryString", ""),
    }
