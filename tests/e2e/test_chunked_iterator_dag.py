"""The daily Redshift -> Pipedrive DAG, run by ``airflow dags test`` against the local cloud."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from step_patterns_sandbox.demo_data import seed_leads

pytestmark = pytest.mark.timeout(900)

DAY = "2026-11-26"  # data interval [2026-11-26, 2026-11-27)
PER_DAY = 120


def _day_leads(cloud, day: str) -> dict[str, str]:
    rows = cloud.warehouse.execute(
        "SELECT lead_id, company FROM leads WHERE CAST(created_at AS DATE) = CAST(:day AS DATE)", {"day": day}
    )
    return dict(rows)


def _deals(cloud) -> dict[str, dict]:
    """Every deal in the Pipedrive sandbox by its External ID (fails on a duplicate)."""
    import requests

    base = cloud.endpoints.pipedrive_base_url
    key = cloud.pipedrive.field_key("External ID")
    deals, cursor = {}, None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{base}/api/v2/deals", params=params,
                            headers={"x-api-token": "sandbox-pipedrive-token"}, timeout=10).json()
        for deal in page["data"]:
            external_id = deal["custom_fields"][key]
            assert external_id not in deals, f"duplicate deal for {external_id}"
            deals[external_id] = deal
        cursor = (page.get("additional_data") or {}).get("next_cursor")
        if not cursor:
            return deals


def _sync_day(airflow, day: str):
    """``airflow dags test`` of the run whose data interval is [day, day + 1).

    A manual run at logical date D gets the last complete interval before D (data-interval
    timetables infer it so), hence the next day as the logical date.
    """
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return airflow.dags_test("redshift_to_pipedrive", next_day)


def _report(cloud, day: str) -> dict:
    key = f"step-patterns/runs/redshift_to_pipedrive/sync_leads/{day}/report.json"
    return json.loads(cloud.client("s3").get_object(Bucket=cloud.endpoints.bucket, Key=key)["Body"].read())


@pytest.fixture
def fresh_leads(cloud):
    seed_leads(cloud.warehouse, days=3, per_day=PER_DAY, last_day="2026-11-27")
    cloud.pipedrive.reset()
    return cloud


def test_daily_sync_creates_each_lead_once_then_updates_only_changes_and_survives_a_killed_lambda(
    airflow, fresh_leads
):
    cloud = fresh_leads
    expected = _day_leads(cloud, DAY)
    assert len(expected) == PER_DAY

    first = _sync_day(airflow, DAY)
    assert first.succeeded, first.output[-6000:]
    deals = _deals(cloud)
    assert {ext: deal["title"] for ext, deal in deals.items()} == expected  # none lost, none extra
    report = _report(cloud, DAY)
    assert (report["records"], report["created"], report["failed"]) == (PER_DAY, PER_DAY, 0)
    assert report["responses_429"] == 0
    assert f"Synced {PER_DAY} records: {PER_DAY} created" in first.output
    # while deferred, the trigger logged progress from the Map Run
    assert re.search(r"is RUNNING; (chunks \d+ of 1 done|no chunk finished yet)", first.output)

    # Ten leads change in the warehouse: the rerun updates exactly those, sends nothing for the rest.
    changed = sorted(expected)[:10]
    for lead_id in changed:
        cloud.warehouse.execute("UPDATE leads SET company = company || ' (renamed)' WHERE lead_id = :id",
                                {"id": lead_id})
    requests_before = cloud.pipedrive.stats()["requests"]
    second = _sync_day(airflow, DAY)
    assert second.succeeded, second.output[-6000:]
    report = _report(cloud, DAY)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 10, PER_DAY - 10)
    deals = _deals(cloud)
    assert len(deals) == PER_DAY
    assert all(deals[lead_id]["title"].endswith("(renamed)") for lead_id in changed)
    # 10 PATCHes plus the few start-up reads (deal fields, id lookup), not one per record
    assert cloud.pipedrive.stats()["requests"] - requests_before <= 10 + 5

    # The chunk syncer is killed 4 s into its first invocation; Step Functions reruns the
    # chunk and the sync state keeps the rerun from creating anything twice.
    other_day = "2026-11-25"
    cloud.kill_lambda("chunk-syncer", after_s=4.0, error_type="Runtime.ExitError")
    third = _sync_day(airflow, other_day)
    assert third.succeeded, third.output[-6000:]
    deals = _deals(cloud)  # asserts no duplicate
    assert len(deals) == 2 * PER_DAY
    assert {ext for ext in deals} == set(expected) | set(_day_leads(cloud, other_day))
    assert cloud.pipedrive.stats()["duplicate_external_ids"] == 0
    report = _report(cloud, other_day)
    # the killed attempt's creates were found in the sync state by the rerun, not made again
    assert report["unchanged"] > 0 and report["created"] + report["unchanged"] == PER_DAY


VARIABLES_DAG = '''
from airflow.sdk import DAG
from step_patterns.operators import ChunkedIteratorOperator

with DAG(dag_id="variables_to_pipedrive", schedule=None):
    ChunkedIteratorOperator(
        task_id="sync",
        sql="SELECT lead_id, company FROM leads ORDER BY lead_id LIMIT 5",
        field_mapping="{{ var.json.sync_mapping }}",  # rendered to text: checked at execute time
        rate="{{ var.value.sync_rate }}",
        database="{{ var.json.step_patterns.database }}",
        cluster_identifier="{{ var.json.step_patterns.cluster_identifier }}",
        secret_arn="{{ var.json.step_patterns.redshift_secret_arn }}",
        role_arn="{{ var.json.step_patterns.states_role_arn }}",
        bucket="{{ var.json.step_patterns.bucket }}",
        pipedrive_secret_arn="{{ var.json.step_patterns.pipedrive_secret_arn }}",
        pipedrive_base_url="{{ var.json.step_patterns.pipedrive_base_url }}",
        poll_interval=1,
    )
'''


def test_field_mapping_and_rate_from_variables_through_jinja_run_end_to_end(airflow, cloud, tmp_path):
    from step_patterns_sandbox.airflow_runner import AirflowRunner

    seed_leads(cloud.warehouse, days=1, per_day=5, last_day=DAY)
    cloud.pipedrive.reset()
    (tmp_path / "variables_to_pipedrive.py").write_text(VARIABLES_DAG)
    runner = AirflowRunner(airflow.home, {
        **airflow.environment,
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path),
        "AIRFLOW_VAR_SYNC_MAPPING": json.dumps({"lead_id": "external_id", "company": "title"}),
        "AIRFLOW_VAR_SYNC_RATE": "40/2s",
    })

    result = runner.dags_test("variables_to_pipedrive")
    assert result.succeeded, result.output[-6000:]
    assert {ext: deal["title"] for ext, deal in _deals(cloud).items()} == _day_leads(cloud, DAY)
    assert "Synced 5 records: 5 created" in result.output
    sfn = cloud.client("stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if "variables" in m["name"])
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    target = json.loads(sfn.describe_execution(executionArn=execution)["input"])["target"]
    assert target["rate"] == {"requests": 40, "per_seconds": 2.0}
    assert target["field_mapping"] == {"lead_id": "external_id", "company": "title"}
