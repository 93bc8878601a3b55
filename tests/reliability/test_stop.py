"""Stopping an execution stops its chunk syncer within seconds, not at the end of its time budget.

StopExecution (Airflow's "Mark failed" on a deferred task, a deferral timeout, the console)
does not interrupt a Lambda invocation in flight; the syncer watches its execution and stops
sending once it is no longer RUNNING. What it sent is in the sync state: the rerun creates
nothing twice and lands the rest.
"""

from __future__ import annotations

import time

from harness import LEADS, day_leads, landing

from step_lambdas.execution_watch import POLL_S

SLOW_RATE = "4/2s"  # 60 leads take about 30 s: long enough to stop it midway


def test_a_stopped_execution_s_syncer_stops_sending_and_the_rerun_lands_the_rest(job, observe):
    cloud = job.cloud
    expected = day_leads(cloud, job.day)
    job.rate, job.chunk_size, job.concurrency = SLOW_RATE, LEADS, 2  # one chunk, one long segment
    arn = job.start()
    while cloud.pipedrive.stats()["deals"] < 6:
        time.sleep(0.1)
    cloud.client("stepfunctions").stop_execution(executionArn=arn, error="AirflowTaskStopped", cause="drill")
    at_stop = cloud.pipedrive.stats()["deals"]
    stopped = job.wait(arn)
    assert stopped.status == "ABORTED"

    landed_after_stop = cloud.pipedrive.deals_once_quiet(quiet_s=POLL_S + 3, timeout_s=60)
    # At 2 requests/s the syncer would have sent all 60 in about 30 s. It stops within one
    # watch interval (plus a second of slack), after the requests already handed to its
    # senders (2 x concurrency) have gone out.
    assert landed_after_stop < LEADS
    assert landed_after_stop - at_stop <= 2 * (POLL_S + 1) + 2 * job.concurrency

    job.rate = "100/2s"
    rerun = job.run()
    assert rerun.status == "SUCCEEDED", (rerun.error, rerun.cause)
    result = landing(cloud, expected)
    assert result.perfect, result
    report = rerun.report
    # what the stopped run sent is found in the sync state: not created again
    assert report["created"] == LEADS - landed_after_stop
    assert report["unchanged"] == landed_after_stop
    observe(fault="execution stopped while its chunk syncer sends", deals_at_stop=at_stop,
            deals_after_stop=landed_after_stop, rerun_created=report["created"],
            rerun_unchanged=report["unchanged"], lost=len(result.lost), duplicates=len(result.duplicated))
