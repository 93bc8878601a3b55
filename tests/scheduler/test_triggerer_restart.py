"""A triggerer that crashes while a task waits in it loses nothing: a new one resumes the wait.

The daily sync is triggered; once its task is deferred and deals are being created, the
triggerer's whole process group is SIGKILLed (a crash: no graceful exit, its job row is left
looking alive) and a new triggerer is started. Airflow hands the trigger over only once the
dead triggerer's heartbeat is older than ``[triggerer] triggerer_health_check_threshold``
(30 s by default; a SIGTERM'd triggerer ends its job as it exits, so the next one takes the
trigger over as soon as it is up). Meanwhile the task stays deferred, with no retry. The new
triggerer runs the same serialized trigger, so it polls the same execution: the task succeeds
on its first try, the run has one execution, and every lead of the day is a deal exactly once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from step_patterns_sandbox.airflow_services import wait_for
from step_patterns_sandbox.demo_data import seed_leads

from daily_task import executions_since

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"
# About 60 s at 20 / 2 s: the execution must outlive the dead triggerer's 30 s threshold (the
# new triggerer takes the trigger over about 30 s after the kill), so the new trigger is seen
# polling it while it still runs.
PER_DAY = 500


def test_a_triggerer_crash_while_deferred_loses_nothing(airflow_services, cloud, clean_slate):
    api = airflow_services.api
    # a day no other scheduler test runs (backfill: the last three days; kill: today - 6; retry: today - 8)
    day = datetime.now(UTC).date() - timedelta(days=5)
    seed_leads(cloud.warehouse, days=1, per_day=PER_DAY, last_day=day.isoformat())
    lead_ids = {lead_id for (lead_id,) in cloud.warehouse.execute(
        "SELECT lead_id FROM leads WHERE CAST(created_at AS DATE) = CAST(:day AS DATE)", {"day": day.isoformat()})}
    assert len(lead_ids) == PER_DAY
    run_id = f"triggerer_restart_test_{int(time.time())}"
    started_at = datetime.now(UTC)
    api.unpause(DAG_ID)
    try:
        # a manual run at logical date D covers the interval before D: [day, day + 1)
        api.trigger(DAG_ID, logical_date=f"{day + timedelta(days=1)}T00:00:00Z", run_id=run_id)
        api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"deferred"}, timeout=180)
        old_triggerer = wait_for(lambda: _triggerer_id(api, run_id), 60, "a triggerer to take the trigger")
        wait_for(lambda: cloud.pipedrive.stats()["deals"] >= 10, 60, "the sync to start creating deals")
        [execution] = executions_since(cloud, started_at)
        assert execution["status"] == "RUNNING"

        killed = time.monotonic()
        airflow_services.restart("triggerer")  # SIGKILL: a crash
        restarted_s = time.monotonic() - killed
        # Airflow reassigns it once the dead triggerer's heartbeat is older than the threshold.
        new_triggerer = wait_for(lambda: _triggerer_id(api, run_id, other_than=old_triggerer), 120,
                                 "the new triggerer to take the trigger over", on_timeout=airflow_services.describe)
        adopted_s = time.monotonic() - killed
        # Not retried while its triggerer was dead: the same try waited on.
        ti = api.task_instance(DAG_ID, run_id, TASK_ID)
        assert (ti["state"], ti["try_number"]) == ("deferred", 1), ti
        at_adoption = executions_since(cloud, started_at)[0]["status"]
        assert at_adoption == "RUNNING", "PER_DAY too small: the execution ended before the trigger was taken over"

        ti = api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"success", "failed"}, timeout=240)
        succeeded_s = time.monotonic() - killed
        log = airflow_services.task_log(DAG_ID, run_id, TASK_ID)
        assert ti["state"] == "success", log[-3000:]
        assert ti["try_number"] == 1, "the task should have waited on, not been retried"

        # One execution, started once: the new triggerer polled the one the task started.
        executions = executions_since(cloud, started_at)
        assert [(e["executionArn"], e["status"]) for e in executions] == [(execution["executionArn"], "SUCCEEDED")]
        assert f"Execution {execution['executionArn']} succeeded" in log
        # The new triggerer's own log of the trigger: progress lines of that execution while it ran.
        resumed = _trigger_log(airflow_services, run_id, new_triggerer)
        assert re.search(rf"Execution {re.escape(execution['executionArn'])} is RUNNING; chunks \d+ of \d+ done",
                         resumed), resumed[-3000:]

        # Every lead of the day is a deal, once; nothing else is.
        deals = _external_ids_of_deals(cloud)
        assert set(deals) == lead_ids, {"lost": sorted(lead_ids - set(deals))[:10],
                                        "unexpected": sorted(set(deals) - lead_ids)[:10]}
        assert [ext for ext, count in deals.items() if count > 1] == []
        assert cloud.pipedrive.stats()["duplicate_external_ids"] == 0
        print(f"triggerer SIGKILLed and restarted in {restarted_s:.1f} s; trigger taken over by the new "
              f"triggerer {adopted_s:.1f} s after the kill; task success {succeeded_s:.1f} s after the kill")
    finally:
        api.set_paused(DAG_ID, True)


def _triggerer_id(api, run_id: str, other_than: int | None = None) -> int | None:
    """The id of the triggerer job that runs the task's trigger (None while unassigned or ``other_than``)."""
    trigger = api.task_instance(DAG_ID, run_id, TASK_ID).get("trigger") or {}
    triggerer_id = trigger.get("triggerer_id")
    return triggerer_id if triggerer_id != other_than else None


def _trigger_log(services, run_id: str, triggerer_id: int) -> str:
    """What one triggerer logged of the task's trigger (Airflow 3 writes it beside the task's log)."""
    path = (services.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={TASK_ID}"
            / f"attempt=1.log.trigger.{triggerer_id}.log")
    return path.read_text(errors="replace") if path.exists() else ""


def _external_ids_of_deals(cloud) -> Counter:
    """External ID -> how many deals carry it, read from the Pipedrive sandbox's store."""
    key = cloud.pipedrive.field_key("External ID")
    counts: Counter = Counter()
    after, more = 0, True
    while more:
        deals, more = cloud.pipedrive.store.page(after, 500)
        counts.update(deal["custom_fields"][key] for deal in deals)
        after = deals[-1]["id"] if deals else after
    return counts
