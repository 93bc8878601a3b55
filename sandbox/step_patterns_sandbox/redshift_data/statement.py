"""One Data API statement: its request, its status history and its result."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .spool import ResultSpool

SUBMITTED, PICKED, STARTED, FINISHED, FAILED, ABORTED = (
    "SUBMITTED",
    "PICKED",
    "STARTED",
    "FINISHED",
    "FAILED",
    "ABORTED",
)
TERMINAL = frozenset({FINISHED, FAILED, ABORTED})
ALL_STATUSES = frozenset({SUBMITTED, PICKED, STARTED, FINISHED, FAILED, ABORTED})


@dataclass
class Target:
    """Where the caller said the statement runs (echoed back; one engine serves all)."""

    database: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    secret_arn: str | None = None
    db_user: str | None = None


@dataclass(eq=False)
class Statement:
    id: str
    owner: tuple[str, str]  # (account id, region): statements are per account and region
    sql: str
    target: Target
    parameters: list[dict] | None = None
    statement_name: str | None = None
    is_batch: bool = False
    redshift_query_id: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    status: str = SUBMITTED
    error: str | None = None
    redshift_pid: int = -1
    started_ns: int | None = None
    ended_ns: int | None = None
    has_result_set: bool = False
    result_rows: int = -1
    result_size: int = -1
    spool: ResultSpool | None = None
    sub_statements: list[Statement] = field(default_factory=list)
    cancel_requested: bool = False
    session: Any = None  # the engine session while STARTED, so CancelStatement can interrupt it
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.updated_at = self.created_at

    def set_status(self, status: str) -> None:
        self.status = status
        self.updated_at = time.time()
        if status == STARTED:
            self.started_ns = time.monotonic_ns()
        elif status in TERMINAL and self.started_ns is not None:
            self.ended_ns = time.monotonic_ns()

    @property
    def duration_ns(self) -> int:
        if self.status not in TERMINAL or self.started_ns is None or self.ended_ns is None:
            return -1
        return self.ended_ns - self.started_ns

    def _common(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Status": self.status,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Duration": self.duration_ns,
            "HasResultSet": self.has_result_set,
            "ResultRows": self.result_rows,
            "ResultSize": self.result_size,
            "RedshiftQueryId": self.redshift_query_id,
            "QueryString": self.sql,
            "Error": self.error,
        }

    def describe(self) -> dict[str, Any]:
        """The DescribeStatement answer (keys with no value are left out, as AWS does)."""
        t = self.target
        data = self._common() | {
            "Database": t.database,
            "ClusterIdentifier": t.cluster_identifier,
            "WorkgroupName": t.workgroup_name,
            "SecretArn": t.secret_arn,
            "DbUser": t.db_user,
            "RedshiftPid": self.redshift_pid,
            "QueryParameters": self.parameters or None,
        }
        if self.is_batch:
            data["SubStatements"] = [
                {k: v for k, v in sub._common().items() if v is not None} for sub in self.sub_statements
            ]
        return {k: v for k, v in data.items() if v is not None}

    def summary(self) -> dict[str, Any]:
        """The ListStatements entry."""
        data: dict[str, Any] = {
            "Id": self.id,
            "Status": self.status,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "StatementName": self.statement_name,
            "SecretArn": self.target.secret_arn,
            "IsBatchStatement": self.is_batch,
            "QueryParameters": self.parameters or None,
        }
        if self.is_batch:
            data["QueryStrings"] = [sub.sql for sub in self.sub_statements]
        else:
            data["QueryString"] = self.sql
        return {k: v for k, v in data.items() if v is not None}
