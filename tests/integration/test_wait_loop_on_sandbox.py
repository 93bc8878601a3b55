"""The wait-loop machine, both variants, executed on the local cloud against the DuckDB warehouse."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from step_patterns.asl import WaitLoopSettings, build_wait_loop

VARIANTS = ("lambda", "sdk")
LONG_QUERY = "SELECT COUNT(*) FROM range(100000000000) t(x) WHERE x % 13 = :mod"


def _machine(cloud, variant: str) -> str:
    functions = cloud.endpoints.functions
    settings = WaitLoopSettings(
        variant=variant,
        statement_starter_arn=functions["statement-start"],
        statement_status_arn=functions["statement-status"],
        sdk_with_parameters=True,
        min_seconds=1,
        max_seconds=2,
    )
    sfn = cloud.client("stepfunctions")
    name = f"wait-loop-{variant}-{uuid.uuid4().hex[:8]}"
    return sfn.create_state_machine(
        name=name, definition=build_wait_loop(settings).to_json(), roleArn=cloud.endpoints.states_role_arn
    )["stateMachineArn"]


def _statement(cloud, sql: str, **parameters) -> dict:
    return {
        "sql": sql,
        "parameters": [{"name": k, "value": str(v)} for k, v in parameters.items()],
        "database": cloud.endpoints.database,
        "cluster_identifier": cloud.endpoints.cluster_identifier,
        "workgroup_name": None,
        "secret_arn": cloud.endpoints.redshift_secret_arn,
        "db_user": None,
        "statement_name": "wait-loop-test",
    }


def _start(cloud, machine: str, execution_input: dict) -> str:
    return cloud.client("stepfunctions").start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(execution_input)
    )["executionArn"]


def _wait(cloud, execution: str, timeout: float = 120) -> dict:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError(f"{execution} still running after {timeout} s")


@pytest.mark.parametrize("variant", VARIANTS)
def test_finished_statement_succeeds_with_its_summary(cloud, variant):
    cloud.warehouse.execute(f"CREATE OR REPLACE TABLE wl_{variant} AS SELECT range AS id FROM range(250)")
    described = _wait(cloud, _start(cloud, _machine(cloud, variant), _statement(
        cloud, f"DELETE FROM wl_{variant} WHERE id >= :keep", keep=200)))
    assert described["status"] == "SUCCEEDED"
    summary = json.loads(described["output"])
    assert summary["status"] == "FINISHED"
    assert summary["result_rows"] == 50  # rows the DELETE removed
    assert summary["statement_id"]
    assert cloud.warehouse.execute(f"SELECT COUNT(*) FROM wl_{variant}") == [(200,)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_failed_statement_fails_with_redshifts_message(cloud, variant):
    described = _wait(cloud, _start(cloud, _machine(cloud, variant), _statement(
        cloud, "SELECT * FROM missing_table WHERE id = :id", id=1)))
    assert described["status"] == "FAILED"
    assert described["error"] == "Redshift.StatementFailed"
    assert "missing_table" in described["cause"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_cancelled_statement_ends_aborted(cloud, variant):
    execution = _start(cloud, _machine(cloud, variant), _statement(cloud, LONG_QUERY, mod=3))
    data_api = cloud.client("redshift-data")
    deadline = time.monotonic() + 30
    running = []
    while not running and time.monotonic() < deadline:
        running = [s for s in data_api.list_statements(Status="STARTED")["Statements"] if s["QueryString"] == LONG_QUERY]
        time.sleep(0.1)
    assert running, "the long statement never started"
    data_api.cancel_statement(Id=running[0]["Id"])
    described = _wait(cloud, execution)
    assert described["status"] == "FAILED"
    assert described["error"] == "Redshift.StatementAborted"


def test_sdk_variant_start_failure_ends_in_its_named_fail(cloud):
    # :missing is never given: the Data API refuses the statement at submit.
    described = _wait(cloud, _start(cloud, _machine(cloud, "sdk"), _statement(
        cloud, "SELECT :missing, :id", id=1)))
    assert described["status"] == "FAILED"
    assert described["error"] == "StartStatementFailed"
    assert described["cause"].startswith("RedshiftData.ValidationException")
