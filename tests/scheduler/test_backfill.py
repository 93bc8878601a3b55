"""``airflow backfill create`` of the daily DAG, run by a real scheduler and triggerer on PostgreSQL.

Three past days: three executions with three names and three S3 prefixes, each syncing only
its day's leads, and no worker slot held while the tasks wait in the triggerer. Then the UI,
in Debian's Chromium: the DAG list, and the finished task's link to its execution.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus, unquote_plus

import pytest

from step_patterns_sandbox.demo_data import seed_leads
from step_patterns.naming import stable_name

from browser import CHROMIUM, CHROMIUM_ARGS, browser_or_skip
from daily_task import executions_since

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"
PER_DAY = 25
RUNS_PREFIX = f"step-patterns/runs/{DAG_ID}/{TASK_ID}/"
STATE_PREFIX = f"step-patterns/sync-state/{DAG_ID}/{TASK_ID}/"
LEAD_ID = re.compile(r"L-\d{7}")  # sandbox.demo_data's lead ids
EXECUTIONS_LINK = "State Machine Executions Details"


@dataclass
class Backfill:
    days: list[str]
    leads_per_day: dict[str, int]
    lead_ids: dict[str, set[str]]
    runs: list[dict]
    started_at: datetime
    elapsed_s: float
    samples: list[dict] = field(default_factory=list)  # consistent (task states, default_pool) pairs

    def run_for(self, day: str) -> dict:
        return next(r for r in self.runs if r["logical_date"].startswith(day))


@pytest.fixture(scope="module")
def backfill(airflow_services, _session_cloud) -> Backfill:
    """Seed three past days of leads and backfill them; watch the pool while the tasks wait."""
    cloud, api = _session_cloud, airflow_services.api
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=back)).isoformat() for back in (3, 2, 1)]
    _clean_slate(cloud)
    seed_leads(cloud.warehouse, days=3, per_day=PER_DAY, last_day=days[-1])
    leads_per_day = {
        str(day): count for day, count in
        cloud.warehouse.execute("SELECT CAST(created_at AS DATE), COUNT(*) FROM leads GROUP BY 1")
    }
    lead_ids = {day: set() for day in days}
    for day, lead_id in cloud.warehouse.execute("SELECT CAST(created_at AS DATE), lead_id FROM leads"):
        lead_ids[str(day)].add(lead_id)
    pipedrive = cloud.pipedrive
    latency = {"latency_ms": pipedrive.settings.latency_ms, "jitter_ms": pipedrive.settings.jitter_ms}
    pipedrive.configure(latency_ms=0, jitter_ms=0)
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    try:
        api.unpause(DAG_ID)  # the harness's scheduler creates no scheduled runs: only the backfill's
        created = airflow_services.cli(
            "backfill", "create", "--dag-id", DAG_ID, "--from-date", days[0], "--to-date", days[-1],
            "--max-active-runs", "1",  # one writer per Pipedrive token, as the DAG itself says
        )
        assert created.succeeded, created.output[-4000:]
        samples, runs = _watch_until_finished(airflow_services, timeout=300)
    finally:
        pipedrive.configure(**latency)
        api.set_paused(DAG_ID, True)
    return Backfill(days, leads_per_day, lead_ids, runs, started_at, time.monotonic() - clock, samples)


def test_backfill_runs_each_past_day_once(backfill, airflow_services):
    assert [r["logical_date"][:10] for r in backfill.runs] == backfill.days
    failed = [r["dag_run_id"] for r in backfill.runs if r["state"] != "success"]
    assert not failed, "\n".join(
        [f"failed runs: {failed}", airflow_services.log_tail("scheduler")]
        + [airflow_services.task_log(DAG_ID, run_id, TASK_ID)[-3000:] for run_id in failed]
    )
    print(f"backfill of 3 days: {backfill.elapsed_s:.1f} s from create to the last run's end")


def test_one_execution_per_day_with_its_own_name_and_prefix(backfill, cloud):
    executions = executions_since(cloud, backfill.started_at)
    expected = {stable_name(DAG_ID, TASK_ID, r["dag_run_id"]) for r in backfill.runs}
    assert sorted(e["name"] for e in executions) == sorted(expected)  # three, none twice
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    sfn = cloud.client("stepfunctions")
    prefixes = sorted(
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])["output"]["prefix"]
        for e in executions
    )
    assert prefixes == [f"{RUNS_PREFIX}{day}" for day in backfill.days]


def test_each_day_syncs_exactly_its_own_leads(backfill, cloud):
    s3 = cloud.client("s3")
    for day in backfill.days:
        chunk_text = "".join(
            s3.get_object(Bucket=cloud.endpoints.bucket, Key=key)["Body"].read().decode()
            for key in _keys(s3, cloud.endpoints.bucket, f"{RUNS_PREFIX}{day}/chunks/")
        )
        assert set(LEAD_ID.findall(chunk_text)) == backfill.lead_ids[day], day
        report = json.loads(
            s3.get_object(Bucket=cloud.endpoints.bucket, Key=f"{RUNS_PREFIX}{day}/report.json")["Body"].read()
        )
        assert report["records"] == backfill.leads_per_day[day] == PER_DAY, (day, report)
        assert (report["created"], report["failed"]) == (PER_DAY, 0), (day, report)
    stats = cloud.pipedrive.stats()
    assert stats["deals"] == sum(backfill.leads_per_day[d] for d in backfill.days)
    assert stats["duplicate_external_ids"] == 0
    assert stats["responses_429"] == 0, stats


def test_deferred_tasks_hold_no_worker_slot(backfill):
    deferred = [s for s in backfill.samples if s["deferred"]]
    assert {run for s in deferred for run in s["deferred"]} == {r["dag_run_id"] for r in backfill.runs}, (
        "every run's task should have been seen deferred"
    )
    for sample in deferred:
        pool = sample["pool"]
        assert pool["deferred_slots"] == len(sample["deferred"]), sample
        assert pool["running_slots"] == 0 and pool["occupied_slots"] == 0, sample
        assert pool["open_slots"] == pool["slots"], sample
    # the same figures move when the task does hold a slot (the watch is not blind)
    assert any(s["pool"]["running_slots"] >= 1 for s in backfill.samples if s["running"]), backfill.samples


def test_task_links_to_its_execution_over_rest(backfill, airflow_services, cloud):
    arns = {e["name"]: e["executionArn"] for e in executions_since(cloud, backfill.started_at)}
    for run in backfill.runs:
        links = airflow_services.api.extra_links(DAG_ID, run["dag_run_id"], TASK_ID)
        arn = arns[stable_name(DAG_ID, TASK_ID, run["dag_run_id"])]
        assert quote_plus(arn) in links[EXECUTIONS_LINK] and arn in unquote_plus(links[EXECUTIONS_LINK]), links
        assert links["State Machine Details"], links


def test_ui_lists_the_dags_and_links_the_execution(backfill, airflow_services, cloud, artifacts_dir):
    sync_playwright = browser_or_skip()
    run = backfill.run_for(backfill.days[-1])
    arn = next(e["executionArn"] for e in executions_since(cloud, backfill.started_at)
               if e["name"] == stable_name(DAG_ID, TASK_ID, run["dag_run_id"]))
    base = airflow_services.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{base}/dags")
            page.get_by_text(DAG_ID, exact=True).first.wait_for(timeout=30_000)
            page.get_by_text("redshift_wait_loop", exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "airflow-ui-dags.png"))

            # the task instance's Details tab lists its extra links
            page.goto(f"{base}/dags/{DAG_ID}/runs/{quote_plus(run['dag_run_id'])}/tasks/{TASK_ID}/details")
            link = page.get_by_role("link", name=EXECUTIONS_LINK)
            link.wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "airflow-ui-task-links.png"))
            href = link.get_attribute("href") or ""
        except Exception:
            page.screenshot(path=str(artifacts_dir / "airflow-ui-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert arn in unquote_plus(href), href


# -- helpers ---------------------------------------------------------------
def _clean_slate(cloud) -> None:
    """No deals, no sync state, no earlier runs' files: what this module counts is its own."""
    cloud.pipedrive.reset()
    s3 = cloud.client("s3")
    for prefix in (RUNS_PREFIX, STATE_PREFIX):
        for key in _keys(s3, cloud.endpoints.bucket, prefix):
            s3.delete_object(Bucket=cloud.endpoints.bucket, Key=key)


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _watch_until_finished(services, timeout: float) -> tuple[list[dict], list[dict]]:
    """Sample task states and the default pool until the backfill's three runs have ended.

    A sample counts only when the task states read before and after the pool are the same, so
    the pool's figures belong to those states.
    """
    api = services.api
    samples: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        services.check_alive()
        before = _task_states(api)
        pool = api.pool("default_pool")
        after = _task_states(api)
        if before == after:
            samples.append({
                "states": before,
                "pool": pool,
                "deferred": sorted(run for run, state in before.items() if state == "deferred"),
                "running": sorted(run for run, state in before.items() if state == "running"),
            })
        runs = [r for r in api.dag_runs(DAG_ID) if r["run_type"] == "backfill"]
        if len(runs) == 3 and all(r["state"] in ("success", "failed") for r in runs):
            return samples, runs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"backfill not finished after {timeout} s: {[(r['dag_run_id'], r['state']) for r in runs]}, "
                f"tasks {before}\n{services.describe()}"
            )
        time.sleep(0.3)


def _task_states(api) -> dict[str, str | None]:
    return {ti["dag_run_id"]: ti["state"] for ti in api.task_instances(DAG_ID) if ti["task_id"] == TASK_ID}

