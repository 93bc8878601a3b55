"""A task that fails after its execution started, then runs again, attaches to that execution.

The outage: Step Functions' DescribeExecution answers 503 long enough for the trigger to give
up, so the task fails while its execution goes on syncing. When the task runs again (cleared,
as a retry would), it must find the running execution (task state store, or its derived
name) and wait for it: one execution for the run, every lead synced once, no duplicate deal.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from step_patterns_sandbox.demo_data import seed_leads
from step_patterns.naming import stable_name

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"
PER_DAY = 400  # about 40 s at 20 / 2 s: the execution must outlive the failed try


def _executions_of_run(cloud, run_id: str) -> list[dict]:
    sfn = cloud.client("stepfunctions")
    base = stable_name(DAG_ID, TASK_ID, run_id)
    found = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            if execution["name"] == base or execution["name"].startswith(base.rsplit("-", 1)[0]):
                found.append(execution)
    return found


def test_a_task_failed_after_start_reattaches_on_its_next_try(airflow_services, cloud, clean_slate):
    api = airflow_services.api
    # a day no other scheduler test runs (the backfill takes the last three days, the kill test today - 6)
    day = datetime.now(UTC).date() - timedelta(days=8)
    seed_leads(cloud.warehouse, days=1, per_day=PER_DAY, last_day=day.isoformat())
    run_id = f"retry_test_{int(time.time())}"
    api.unpause(DAG_ID)
    try:
        # a manual run at logical date D covers the interval before D: [day, day + 1)
        api.trigger(DAG_ID, logical_date=f"{day + timedelta(days=1)}T00:00:00Z", run_id=run_id)
        api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"deferred"}, timeout=180)
        cloud.fail_aws("stepfunctions", "DescribeExecution", times=10_000)
        try:
            failed = api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"failed", "up_for_retry"}, timeout=180)
        finally:
            cloud.end_aws_faults()
        running = _executions_of_run(cloud, run_id)
        assert [e["status"] for e in running] == ["RUNNING"], "the execution should outlive the failed try"

        api.clear_task_instances(DAG_ID, run_id, [TASK_ID])
        deadline = time.monotonic() + 300
        while True:  # the next try, once it ended (the failed try's state lingers until it starts)
            ti = api.task_instance(DAG_ID, run_id, TASK_ID)
            if ti["try_number"] > failed["try_number"] and ti["state"] in ("success", "failed"):
                break
            assert time.monotonic() < deadline, f"the next try did not finish: {ti['state']}, try {ti['try_number']}"
            time.sleep(1)
        assert ti["state"] == "success", airflow_services.task_log(DAG_ID, run_id, TASK_ID, ti["try_number"])[-3000:]
        assert ti["try_number"] > failed["try_number"]

        executions = _executions_of_run(cloud, run_id)
        assert len(executions) == 1 and executions[0]["status"] == "SUCCEEDED", executions
        log = airflow_services.task_log(DAG_ID, run_id, TASK_ID, ti["try_number"])
        assert "Attached to running execution" in log
        stats = cloud.pipedrive.stats()
        assert stats["deals"] == PER_DAY and stats["duplicate_external_ids"] == 0
    finally:
        cloud.end_aws_faults()
        api.set_paused(DAG_ID, True)
