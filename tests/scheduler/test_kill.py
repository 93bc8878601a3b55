"""Marking a deferred task failed in Airflow stops the Step Functions execution behind it.

The daily sync is triggered on a day with enough leads to run for a while; once the task
waits in the triggerer (and has logged progress), it is marked failed through the REST API,
as the UI's "Mark failed" does. The trigger's on_kill must stop the execution: ABORTED
within seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from step_patterns_sandbox.demo_data import seed_leads

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"


def _execution_for(cloud, run_id: str) -> dict | None:
    from step_patterns.naming import stable_name

    sfn = cloud.client("stepfunctions")
    name = stable_name(DAG_ID, TASK_ID, run_id)
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            if execution["name"] == name:
                return sfn.describe_execution(executionArn=execution["executionArn"])
    return None


def test_marking_a_deferred_task_failed_aborts_its_execution(airflow_services, cloud, clean_slate):
    api = airflow_services.api
    # a day no other scheduler test runs (the backfill takes the last three days)
    day = datetime.now(UTC).date() - timedelta(days=6)
    seed_leads(cloud.warehouse, days=2, per_day=400, last_day=day.isoformat())  # ~40 s a day at 20 / 2 s
    run_id = f"kill_test_{int(time.time())}"
    api.unpause(DAG_ID)
    try:
        # a manual run at logical date D covers the interval before D: [day, day + 1)
        api.trigger(DAG_ID, logical_date=f"{day + timedelta(days=1)}T00:00:00Z", run_id=run_id)
        api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"deferred"}, timeout=180)
        # let the sync get going: deals are being created
        deadline = time.monotonic() + 60
        while cloud.pipedrive.stats()["deals"] < 20:
            assert time.monotonic() < deadline, "the sync never started creating deals"
            time.sleep(0.5)
        assert _execution_for(cloud, run_id)["status"] == "RUNNING"

        api.mark_failed(DAG_ID, run_id, TASK_ID)
        marked = time.monotonic()
        while (execution := _execution_for(cloud, run_id))["status"] == "RUNNING":
            assert time.monotonic() - marked < 30, "execution still RUNNING 30 s after the task was marked failed"
            time.sleep(0.5)
        stopped_after = time.monotonic() - marked
        assert execution["status"] == "ABORTED", execution
        print(f"execution ABORTED {stopped_after:.1f} s after the task was marked failed")
        assert api.task_instance(DAG_ID, run_id, TASK_ID)["state"] == "failed"
        # (AWS also records the stop's error, AirflowTaskStopped; moto drops it)
        # StopExecution does not end a Lambda invocation already running, but the chunk syncer
        # watches its execution and stops sending within its 5 s poll (plus the requests in
        # flight): at 10 requests/s, far from the 400 it would otherwise have gone on to create.
        at_abort = cloud.pipedrive.stats()["deals"]
        settled = cloud.pipedrive.deals_once_quiet(quiet_s=8.0, timeout_s=120)
        print(f"deals: {at_abort} when the execution ended ABORTED, {settled} once quiet")
        assert settled < 400 and settled - at_abort <= 10 * (5 + 3) + 16
    finally:
        api.set_paused(DAG_ID, True)
