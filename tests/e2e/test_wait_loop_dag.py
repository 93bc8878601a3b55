"""The example wait-loop DAG, run by ``airflow dags test`` against the local cloud."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(900)


def _executions(cloud, status):
    sfn = cloud.client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    found = []
    for machine in machines:
        found += sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter=status)["executions"]
    return found


def test_good_statement_succeeds_and_returns_the_summary(airflow, cloud):
    cloud.warehouse.execute("CREATE TABLE IF NOT EXISTS leads_raw AS SELECT range AS id FROM range(1000)")
    sql = "CREATE TABLE leads_per_day AS SELECT CAST(:day AS DATE) AS day, COUNT(*) AS leads FROM leads_raw"
    result = airflow.dags_test("redshift_wait_loop", "2026-11-27", conf=json.dumps({"sql": sql}))
    assert result.succeeded, result.output[-6000:]
    assert "Execution arn:aws:states" in result.output and "succeeded" in result.output
    assert cloud.warehouse.execute("SELECT day, leads FROM leads_per_day")[0][1] == 1000
    assert str(cloud.warehouse.execute("SELECT day FROM leads_per_day")[0][0]) == "2026-11-27"
    succeeded = _executions(cloud, "SUCCEEDED")
    assert any("redshift_wait_loop" in e["name"] for e in succeeded)


def test_bad_statement_fails_the_task_with_the_sql_error(airflow, cloud):
    result = airflow.dags_test(
        "redshift_wait_loop", "2026-11-26", conf=json.dumps({"sql": "SELECT * FROM no_such_table WHERE day = :day"})
    )
    assert not result.succeeded or "state=failed" in result.output, result.output[-6000:]
    assert "Redshift.StatementFailed" in result.output
    assert "no_such_table" in result.output  # the engine's own message reaches the task log
