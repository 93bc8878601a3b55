"""The event of each Lambda of the bundle, as one dataclass: ``from_event`` checks it, ``to_event`` writes it.

The ASL builders spell the Lambdas' payloads from the field names here (``EVENT_FIELDS``);
the Lambdas read their events with ``from_event``, raising their named error (the
``errorType`` Step Functions sees) with the field and the value that were wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from step_lambdas.contract import checks, layout
from step_lambdas.contract.rate import RateShare

DEFAULT_SYNC_CONCURRENCY = 8  # requests in flight per chunk syncer


class InvalidStatementSpec(ValueError):
    """The statement to run is malformed; raised before anything reaches Redshift."""


class InvalidExportRequest(ValueError):
    """The execution input cannot describe an export; the message says which field and why."""


class InvalidChunkRequest(ValueError):
    """The chunk syncer's input is malformed; the message says which field."""


class InvalidReportRequest(ValueError):
    """The report's input or the export it points at is not usable; the message says why."""


@dataclass(frozen=True)
class StatementSpec:
    """The statement-start Lambda's event, the query executor's ``query`` and the wait loop's execution input."""

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
        cluster, workgroup = event.get("cluster_identifier"), event.get("workgroup_name")
        try:
            sql = checks.text("sql", event.get("sql"))
            database = checks.text("database", event.get("database"))
            one_target(cluster, workgroup)
        except ValueError as error:
            raise InvalidStatementSpec(str(error)) from None
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

    def to_event(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            # every value as text, as the Data API takes it (the SDK variant passes them as is)
            "parameters": [{"name": n, "value": v} for n, v in self.parameters],
            "database": self.database,
            "cluster_identifier": self.cluster_identifier or None,
            "workgroup_name": self.workgroup_name or None,
            "secret_arn": self.secret_arn or None,
            "db_user": self.db_user or None,
            "statement_name": self.statement_name or None,
        }

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


def one_target(cluster_identifier: Any, workgroup_name: Any) -> None:
    """A statement runs on a provisioned cluster or on a Serverless workgroup: exactly one."""
    if bool(cluster_identifier) == bool(workgroup_name):
        raise ValueError("give exactly one of cluster_identifier (provisioned cluster) "
                         "or workgroup_name (Redshift Serverless)")


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


@dataclass(frozen=True)
class ExportRequest:
    statement: StatementSpec
    external_id_field: str
    field_mapping: Mapping[str, str]
    bucket: str
    prefix: str
    chunk_size: int | None = None
    rate: RateShare | None = None
    map_mode: str = "DISTRIBUTED"

    """The query executor's event: the whole execution input (it reads ``query``,
    ``target.external_id_field``, ``target.field_mapping``, ``target.rate``, ``output``,
    ``chunk_size`` and ``map_mode``)."""

    @classmethod
    def from_event(cls, event: Any) -> "ExportRequest":
        if not isinstance(event, dict):
            raise InvalidExportRequest(f"expected the execution input as a JSON object, got {type(event).__name__}")
        try:
            statement = StatementSpec.from_event(event.get("query"))
        except InvalidStatementSpec as error:
            raise InvalidExportRequest(f"query: {error}") from None
        target = event.get("target")
        if not isinstance(target, dict):
            raise InvalidExportRequest("'target' must be an object with 'external_id_field'")
        output = event.get("output")
        if not isinstance(output, dict) or not isinstance(output.get("bucket"), str) or not output["bucket"]:
            raise InvalidExportRequest("'output' must be an object with a non-empty 'bucket' and a 'prefix'")
        try:
            external_id_field = checks.text("target.external_id_field", target.get("external_id_field"),
                                            what="the name or key of a custom deal field")
            mapping = checks.field_mapping("target.field_mapping", target.get("field_mapping"))
            prefix = layout.normalize_prefix(output.get("prefix", ""))
            chunk_size = checks.optional_integer("chunk_size", event.get("chunk_size"),
                                                 none="null (computed from target.rate)")
            # the chunk size is computed from the rate when it is not given
            rate = None if target.get("rate") is None and chunk_size is not None else RateShare.from_event(target.get("rate"))
            map_mode = checks.map_mode("map_mode", event.get("map_mode") or "DISTRIBUTED")
        except ValueError as error:
            raise InvalidExportRequest(str(error)) from None
        return cls(statement, external_id_field, mapping, output["bucket"], prefix, chunk_size, rate, map_mode)

    def to_event(self) -> dict[str, Any]:
        target: dict[str, Any] = {"external_id_field": self.external_id_field, "field_mapping": dict(self.field_mapping)}
        if self.rate is not None:
            target["rate"] = self.rate.to_event()
        return {"query": self.statement.to_event(), "target": target,
                "output": {"bucket": self.bucket, "prefix": self.prefix},
                "chunk_size": self.chunk_size, "map_mode": self.map_mode}


@dataclass(frozen=True)
class StatementStatusRequest:
    """The statement-status Lambda's event: ``{"statement_id"}``."""

    statement_id: str

    @classmethod
    def from_event(cls, event: Any) -> "StatementStatusRequest":
        statement_id = event.get("statement_id") if isinstance(event, dict) else None
        if not isinstance(statement_id, str) or not statement_id:
            raise InvalidStatementSpec("'statement_id' must be a non-empty string")
        return cls(statement_id)

    def to_event(self) -> dict[str, Any]:
        return {"statement_id": self.statement_id}


@dataclass(frozen=True)
class ChunkSyncRequest:
    """The chunk syncer's event: ``{"chunk": <manifest entry>, "cursor", "target", "output", "execution_arn"}``."""

    EVENT_FIELDS = ("chunk", "cursor", "target", "output", "execution_arn")

    index: int
    key: str
    cursor: int
    bucket: str
    prefix: str
    sync_state_prefix: str
    base_url: str
    secret_arn: str
    external_id_field: str
    rate_requests: int
    rate_window_s: float
    concurrency: int
    execution_arn: str | None = None
    records: int | None = None  # the manifest entry's count, carried back by to_event

    @classmethod
    def from_event(cls, event: Any) -> "ChunkSyncRequest":
        if not isinstance(event, dict):
            raise InvalidChunkRequest(f"expected a JSON object, got {type(event).__name__}")
        try:
            chunk, target, output = event["chunk"], event["target"], event["output"]
            rate = RateShare.from_event(target["rate"])
            request = cls(
                index=checks.count("chunk.index", chunk["index"]),
                key=checks.text("chunk.key", chunk["key"]),
                cursor=checks.count("cursor", event.get("cursor") or 0),
                bucket=checks.text("output.bucket", output["bucket"]),
                prefix=layout.normalize_prefix(output.get("prefix", "")),
                sync_state_prefix=checks.text("output.sync_state_prefix", output["sync_state_prefix"]),
                base_url=checks.text("target.pipedrive_base_url", target["pipedrive_base_url"]),
                secret_arn=checks.text("target.pipedrive_secret_arn", target["pipedrive_secret_arn"]),
                external_id_field=checks.text("target.external_id_field", target["external_id_field"]),
                rate_requests=rate.requests,
                rate_window_s=rate.per_seconds,
                concurrency=checks.integer("target.concurrency", target.get("concurrency") or DEFAULT_SYNC_CONCURRENCY),
                execution_arn=event.get("execution_arn") or None,
                records=chunk.get("records"),
            )
        except KeyError as error:
            raise InvalidChunkRequest(f"chunk syncer input is missing {error}") from None
        except (TypeError, ValueError) as error:
            raise InvalidChunkRequest(f"chunk syncer input: {error}") from None
        return request

    def to_event(self) -> dict[str, Any]:
        return {
            "chunk": {"index": self.index, "key": self.key, "records": self.records},
            "cursor": self.cursor,
            "target": {
                "external_id_field": self.external_id_field,
                "pipedrive_secret_arn": self.secret_arn,
                "pipedrive_base_url": self.base_url,
                "rate": RateShare(self.rate_requests, self.rate_window_s).to_event(),
                "concurrency": self.concurrency,
            },
            "output": {"bucket": self.bucket, "prefix": self.prefix, "sync_state_prefix": self.sync_state_prefix},
            "execution_arn": self.execution_arn,
        }


@dataclass(frozen=True)
class ReportRequest:
    """The report Lambda's event: ``{"export", "output", "execution_name", "execution_start_time"}``
    (plus ``"sync_error"`` after a failed Map, read by the handler)."""

    EVENT_FIELDS = ("export", "output", "execution_name", "execution_start_time")
    SYNC_ERROR_FIELD = "sync_error"

    bucket: str
    prefix: str
    manifest_key: str
    chunks: int
    records: int
    contract_errors: int
    execution_name: str
    started_at: dt.datetime

    @classmethod
    def from_event(cls, event: Any) -> "ReportRequest":
        if not isinstance(event, dict):
            raise InvalidReportRequest(f"expected a JSON object, got {type(event).__name__}")
        export = event.get("export")
        if not isinstance(export, dict):
            raise InvalidReportRequest("'export' must be the query executor's result")
        try:
            for name in ("chunks", "records", "contract_errors"):
                checks.count(f"export.{name}", export.get(name))
            for name in ("bucket", "manifest_key"):
                checks.text(f"export.{name}", export.get(name))
            output = event.get("output") if isinstance(event.get("output"), dict) else {}
            prefix = layout.normalize_prefix(export.get("prefix", output.get("prefix", "")))
        except ValueError as error:
            raise InvalidReportRequest(str(error)) from None
        started = event.get("execution_start_time")
        try:
            started_at = dt.datetime.fromisoformat(str(started).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidReportRequest(f"execution_start_time must be an ISO 8601 timestamp, got {started!r}") from None
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=dt.timezone.utc)
        return cls(export["bucket"], prefix, export["manifest_key"], export["chunks"], export["records"],
                   export["contract_errors"], str(event.get("execution_name") or ""), started_at)
