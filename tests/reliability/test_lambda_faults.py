"""Lambda faults through the chunked iterator: the chunk syncer crashes or times out mid-chunk,
the query executor fails once, and a failed execution is retried by the operator.

A crash "after k records" is exact: the sandbox kills the syncer as soon as the k-th deal is
committed in Pipedrive (``LocalCloud.crash_lambda_after_writes``). With one create in flight and
every answer leaving ``SLOW_ANSWER_MS`` after its work, the kill lands while the k-th answer is
still on its way: the worst place to crash, a deal made that the syncer never recorded. The
rerun of the chunk must find the deals it recorded in the sync state, the last one by its
External ID, and create only the rest.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass

import pytest
from harness import DAY, LEADS, day_leads, execution_history, landing

from step_lambdas.manifest import FUNCTIONS
from step_lambdas.pipedrive.upsert import deadline_from_remaining_ms
from step_patterns.asl.chunked_iterator import CONTINUE_CHUNK, ChunkedIteratorSettings
from step_patterns.operators.base import readable_cause

pytestmark = pytest.mark.timeout(300)

CHUNK = 25  # the suite's chunk size: 60 leads are chunks of 25, 25 and 10
K = 7  # records into chunk 0: on no chunk or segment boundary
SLOW_ANSWER_MS = 50  # the kill lands ~10 ms after the commit, well before the answer leaves
ATTEMPTS = 1 + ChunkedIteratorSettings.chunk_rerun_attempts  # SyncChunk's tries at a crashing chunk
# The syncer stops sending this long before its timeout (room for a request in flight).
DEADLINE_RESERVE_S = inspect.signature(deadline_from_remaining_ms).parameters["reserve_s"].default
SHORT_TIMEOUT_S = int(DEADLINE_RESERVE_S) + 2
# Pipedrive token units (dealFields 20, a deal list page 10, a create 5): chunk 0, then 10 of chunk 1
DAILY_BUDGET = 20 + 10 + CHUNK * 5 + 20 + 10 + 10 * 5


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def exact_crashes(crm, job):
    """One create in flight and answers that leave ``SLOW_ANSWER_MS`` after the work, so
    "crash after the k-th create" is one point in time (the crm fixture restores the speed)."""
    crm.pipedrive.configure(slow_rate=1.0, slow_ms=SLOW_ANSWER_MS)
    job.concurrency = 1
    return job


@pytest.fixture
def short_syncer_timeout(crm):
    """The chunk syncer deployed with a timeout of ``SHORT_TIMEOUT_S``: its own deadline (the
    timeout less the reserve) leaves it ~2 s per invocation. Warmed by one invocation, so its
    first chunk does not spend that budget starting up."""
    lambda_client = crm.client("lambda")
    name = crm.endpoints.functions["chunk-syncer"]
    lambda_client.update_function_configuration(FunctionName=name, Timeout=SHORT_TIMEOUT_S)
    try:
        warm_up = lambda_client.invoke(FunctionName=name, Payload=b"{}")  # rejected at once
        assert json.load(warm_up["Payload"])["errorType"] == "InvalidChunkRequest"
        yield SHORT_TIMEOUT_S
    finally:
        lambda_client.update_function_configuration(FunctionName=name, Timeout=FUNCTIONS["chunk-syncer"].timeout_s)


@dataclass(frozen=True)
class TaskFailure:
    function: str  # the bundle key, e.g. "chunk-syncer"
    error: str
    cause: str


def lambda_tasks(cloud, execution_arn: str) -> tuple[list[str], list[TaskFailure]]:
    """The Lambda tasks the execution scheduled (bundle keys, in order) and those that failed.

    The Map syncs one chunk at a time (max_concurrency 1), so a failure belongs to the task
    scheduled last.
    """
    functions = {arn: key for key, arn in cloud.endpoints.functions.items()}
    scheduled, failures = [], []
    for event in execution_history(cloud, execution_arn):
        if event["type"] == "TaskScheduled":
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            scheduled.append(functions[parameters["FunctionName"]])
        elif event["type"] == "TaskFailed":
            details = event["taskFailedEventDetails"]
            failures.append(TaskFailure(scheduled[-1], details["error"], details.get("cause", "")))
    return scheduled, failures


def creates_sent(cloud) -> int:
    """POST requests Pipedrive received: a create sent twice would show here."""
    return cloud.pipedrive.stats()["requests_by_method"].get("POST", 0)


def assert_every_lead_landed_once(cloud):
    landed = landing(cloud, day_leads(cloud, DAY))
    assert landed.lost == [] and landed.duplicated == [] and landed.perfect, landed
    assert cloud.pipedrive.stats()["duplicate_external_ids"] == 0
    return landed


def assert_made_once(report: dict, made_before: int) -> None:
    """The run after a crash created only what was not made before it: the deals made before
    are found (in the sync state: unchanged; the one whose answer the crash cut off: by its
    External ID, then updated), none is created again."""
    assert report["created"] == LEADS - made_before
    assert report["unchanged"] + report["updated"] == made_before and report["updated"] <= 1
    assert report["records"] == LEADS and report["failed"] == 0


# -- 1. the chunk syncer crashes after k records -------------------------------------------


def test_syncer_crash_after_k_creates_reruns_the_chunk_without_duplicates(crm, exact_crashes, observe):
    job = exact_crashes
    crm.crash_lambda_after_writes("chunk-syncer", writes=K, error_type="Runtime.ExitError")

    outcome = job.run()

    assert outcome.status == "SUCCEEDED", f"{outcome.error}: {outcome.cause}"
    landed = assert_every_lead_landed_once(crm)
    scheduled, failures = lambda_tasks(crm, outcome.execution_arn)
    assert [(f.function, f.error) for f in failures] == [("chunk-syncer", "Runtime.ExitError")]
    assert "injected fault" in failures[0].cause
    report = outcome.report  # the crashed attempt wrote no result: these are the rerun's
    assert_made_once(report, made_before=K)
    assert report["chunks_reported"] == 3 and creates_sent(crm) == LEADS
    observe(fault="chunk-syncer crashes after k records (Runtime.ExitError); Step Functions reruns the chunk",
            k=K, status=outcome.status, syncer_invocations=scheduled.count("chunk-syncer"), crashed=len(failures),
            created=report["created"], unchanged=report["unchanged"], updated=report["updated"],
            creates_sent=creates_sent(crm), lost=len(landed.lost), duplicates=len(landed.duplicated),
            seconds=outcome.seconds)


def test_syncer_crashing_past_its_retries_fails_named_then_a_rerun_completes(crm, exact_crashes, observe):
    job = exact_crashes
    # every attempt at the chunk crashes: the first after K creates, the reruns at their start
    # (the K deals exist by then)
    crm.crash_lambda_after_writes("chunk-syncer", writes=K, error_type="Runtime.ExitError", times=ATTEMPTS)

    failed = job.run()

    assert failed.status == "FAILED" and failed.error == "ChunkSyncFailed"
    assert failed.cause.startswith("ChunksNotSynced: ") and "Runtime.ExitError: " in failed.cause and "injected fault" in failed.cause
    _, failures = lambda_tasks(crm, failed.execution_arn)
    # the syncer's three attempts, then the report of what was not synced (it fails the run by name)
    assert [(f.function, f.error) for f in failures] == [("chunk-syncer", "Runtime.ExitError")] * ATTEMPTS + [
        ("report", "ChunksNotSynced")]
    made_before = crm.pipedrive.stats()["deals"]
    assert made_before == K

    rerun = job.run()  # the same task and day again: the same sync state

    assert rerun.status == "SUCCEEDED", f"{rerun.error}: {rerun.cause}"
    landed = assert_every_lead_landed_once(crm)
    assert_made_once(rerun.report, made_before)
    assert creates_sent(crm) == LEADS
    observe(fault="chunk-syncer crashes on every attempt (past SyncChunk's retries), then a rerun",
            k=K, attempts=len(failures), status=failed.status, error=failed.error,
            cause=readable_cause(failed.cause), deals_before_rerun=made_before, rerun_status=rerun.status,
            created=rerun.report["created"], unchanged=rerun.report["unchanged"],
            updated=rerun.report["updated"], creates_sent=creates_sent(crm), lost=len(landed.lost),
            duplicates=len(landed.duplicated), seconds=round(failed.seconds + rerun.seconds, 1))


# -- 2. the chunk syncer times out ---------------------------------------------------------


def test_syncer_killed_at_its_timeout_mid_chunk_reruns_without_duplicates(crm, exact_crashes, observe):
    """Lambda ends an invocation at its timeout as Sandbox.Timedout. Killed at a write count, not
    a time, so it lands mid-chunk on every run: in chunk 1, after its 8th create (chunk 0's
    invocation ends before that and is not killed)."""
    job = exact_crashes
    into_chunk_1 = 8
    crm.crash_lambda_after_writes("chunk-syncer", writes=CHUNK + into_chunk_1, error_type="Sandbox.Timedout")

    outcome = job.run()

    assert outcome.status == "SUCCEEDED", f"{outcome.error}: {outcome.cause}"
    landed = assert_every_lead_landed_once(crm)
    _, failures = lambda_tasks(crm, outcome.execution_arn)
    assert [(f.function, f.error) for f in failures] == [("chunk-syncer", "Sandbox.Timedout")]
    report = outcome.report  # chunk 0 as its own invocation reported it, chunk 1 as its rerun did
    assert_made_once(report, made_before=into_chunk_1)
    assert creates_sent(crm) == LEADS
    observe(fault="chunk-syncer killed at its timeout mid-chunk (Sandbox.Timedout); Step Functions reruns the chunk",
            k=CHUNK + into_chunk_1, status=outcome.status, timed_out=len(failures), created=report["created"],
            unchanged=report["unchanged"], updated=report["updated"], creates_sent=creates_sent(crm),
            lost=len(landed.lost), duplicates=len(landed.duplicated), seconds=outcome.seconds)


def test_syncer_returns_a_cursor_before_its_timeout_and_the_machine_goes_on(crm, job, short_syncer_timeout,
                                                                            observe):
    """The path that keeps real timeouts away: the syncer stops sending at its own deadline and
    returns a cursor; CheckChunkDone sends the chunk again from there. Nothing is killed."""
    job.chunk_size = LEADS  # one chunk, more than one invocation's work at this rate
    job.rate = "15/1s"

    outcome = job.run()

    assert outcome.status == "SUCCEEDED", f"{outcome.error}: {outcome.cause}"
    landed = assert_every_lead_landed_once(crm)
    scheduled, failures = lambda_tasks(crm, outcome.execution_arn)
    continued = sum(1 for e in execution_history(crm, outcome.execution_arn)
                    if e["type"] == "PassStateEntered" and e["stateEnteredEventDetails"]["name"] == CONTINUE_CHUNK)
    segments = scheduled.count("chunk-syncer")
    assert failures == [] and segments >= 2 and continued == segments - 1
    report = outcome.report
    # a create still in flight at a segment's deadline is in the sync state: the next finds it unchanged
    assert report["created"] + report["unchanged"] == LEADS and report["updated"] == 0
    assert report["chunks_reported"] == 1 and creates_sent(crm) == LEADS
    observe(fault=f"chunk-syncer deadline: Lambda timeout {short_syncer_timeout} s, one chunk of {LEADS} at 15/s",
            status=outcome.status, segments=segments, continued=continued, killed=len(failures),
            created=report["created"], unchanged=report["unchanged"], creates_sent=creates_sent(crm),
            lost=len(landed.lost), duplicates=len(landed.duplicated), seconds=outcome.seconds)


# -- 3. the query executor fails once, then succeeds ---------------------------------------


def test_query_executor_service_error_is_retried_by_step_functions(crm, job, observe):
    """The Lambda service answers the first Invoke with ServiceException (HTTP 500) before
    running anything, as AWS can: Step Functions names it Lambda.ServiceException and RunQuery's
    Retry invokes the query executor again."""
    crm.fail_aws("awslambda", "Invoke", times=1, error_code="ServiceException", status=500)  # moto's service name

    outcome = job.run()

    assert outcome.status == "SUCCEEDED", f"{outcome.error}: {outcome.cause}"
    landed = assert_every_lead_landed_once(crm)
    scheduled, failures = lambda_tasks(crm, outcome.execution_arn)
    assert [(f.function, f.error) for f in failures] == [("query-executor", "Lambda.ServiceException")]
    assert "Status Code: 500" in failures[0].cause
    assert scheduled[:2] == ["query-executor", "query-executor"] and scheduled.count("query-executor") == 2
    assert outcome.report["created"] == LEADS and creates_sent(crm) == LEADS
    observe(fault="query-executor fails once (Lambda.ServiceException); Step Functions retries RunQuery",
            status=outcome.status, query_attempts=scheduled.count("query-executor"),
            failed_attempt=failures[0].error, created=outcome.report["created"], lost=len(landed.lost),
            duplicates=len(landed.duplicated), seconds=outcome.seconds)


def test_query_executor_crash_fails_named_and_a_rerun_completes(crm, job, observe):
    """Today RunQuery retries only Lambda service errors: a crashed query executor
    (Runtime.ExitError) fails the execution as QueryFailed before anything reached Pipedrive."""
    crm.kill_lambda("query-executor", after_s=0, error_type="Runtime.ExitError")

    failed = job.run()

    assert failed.status == "FAILED" and failed.error == "QueryFailed"
    assert failed.cause.startswith("Runtime.ExitError: ")
    assert crm.pipedrive.stats()["requests"] == 0
    rerun = job.run()
    assert rerun.status == "SUCCEEDED", f"{rerun.error}: {rerun.cause}"
    landed = assert_every_lead_landed_once(crm)
    assert rerun.report["created"] == LEADS
    observe(fault="query-executor crashes (Runtime.ExitError): not retried by RunQuery, then a rerun",
            status=failed.status, error=failed.error, cause=readable_cause(failed.cause),
            pipedrive_requests_before_rerun=0, rerun_status=rerun.status, created=rerun.report["created"],
            lost=len(landed.lost), duplicates=len(landed.duplicated),
            seconds=round(failed.seconds + rerun.seconds, 1))


# -- 4. the retry of a failed execution ------------------------------------------------------


class _TaskStateStore(dict):
    """Airflow's task state store as the operator uses it (get/set; survives retries)."""

    def set(self, key, value):
        self[key] = value


@dataclass
class _TaskInstance:
    try_number: int


def wait_for_end(cloud, execution_arn: str, timeout_s: float = 180) -> dict:
    sfn = cloud.client("stepfunctions")
    started = time.monotonic()
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() - started < timeout_s, f"{execution_arn} still running after {timeout_s} s"
        time.sleep(0.25)
    return described


def test_retry_of_a_failed_execution_runs_anew_without_duplicates(
        crm, job, monkeypatch, observe):
    """The operator's own choice on a retry (``_choose_execution``, real hook), without a scheduler.

    Try 1 starts the execution; Pipedrive's daily budget runs out mid-sync (DailyBudgetExceeded,
    not retried: ChunkSyncFailed). Try 2 finds it FAILED: it ended in the machine's named Fail
    state, where a redrive would resume and fail again, so the operator starts "<name>-try2"
    (no RedriveExecution call), which creates only what try 1 did not.
    """
    from airflow.sdk import DAG

    from step_patterns_sandbox.cloud import airflow_environment
    from step_patterns.operators.base import EXECUTION_ARN_KEY

    for name, value in airflow_environment(crm.endpoints).items():
        monkeypatch.setenv(name, value)
    with DAG("reliability_lambda_faults", schedule=None):
        operator = job.operator()
    machine_arn, store, run_id = job.state_machine(), _TaskStateStore(), f"scheduled__{DAY}"

    def task_try(number: int):
        return operator._choose_execution(
            {"run_id": run_id, "ti": _TaskInstance(number), "task_state_store": store}, machine_arn)

    crm.pipedrive.configure(daily_budget=DAILY_BUDGET)
    first = task_try(1)
    store.set(EXECUTION_ARN_KEY, first.arn)  # as execute() does before deferring
    failed = wait_for_end(crm, first.arn)
    assert first.how == "Started" and failed["status"] == "FAILED" and failed["error"] == "ChunkSyncFailed"
    assert failed["cause"].startswith("ChunksNotSynced: ") and "DailyBudgetExceeded: " in failed["cause"]
    made_by_try_1 = crm.pipedrive.stats()["deals"]
    assert 0 < made_by_try_1 < LEADS

    crm.pipedrive.configure(daily_budget=None)  # the next day's budget
    second = task_try(2)
    succeeded = wait_for_end(crm, second.arn)

    assert second.arn.endswith("-try2") and second.how == "Previous execution FAILED; started"
    assert succeeded["status"] == "SUCCEEDED", succeeded.get("cause")
    landed = assert_every_lead_landed_once(crm)
    report = json.loads(succeeded["output"])
    assert_made_once(report, made_by_try_1)
    assert crm.pipedrive.stats()["deals"] == LEADS
    observe(fault="retry of a failed execution (daily budget out mid-sync): new -try2 execution",
            first_status=failed["status"], first_error=failed["error"], first_cause=readable_cause(failed["cause"]),
            made_by_try_1=made_by_try_1,
            second=second.how, second_status=succeeded["status"], created=report["created"],
            unchanged=report["unchanged"], updated=report["updated"], lost=len(landed.lost),
            duplicates=len(landed.duplicated))
