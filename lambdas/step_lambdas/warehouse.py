"""Redshift Data API: start a statement (its spec is the contract's StatementSpec) and summarize its status."""

from __future__ import annotations

from typing import Any

from step_lambdas.contract.events import StatementSpec

FINISHED = "FINISHED"
FAILED_STATES = frozenset({"FAILED", "ABORTED"})
RUNNING_STATES = frozenset({"SUBMITTED", "PICKED", "STARTED"})


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
