"""The generated definitions on moto's Step Functions interpreter (the session's moto server).

Whole executions with the real Lambdas and the Redshift Data API belong to the sandbox
tests; here we check what needs no Lambda: moto's parser accepts every variant, the
intrinsic-function backoff evolves as designed, the SDK variant's DescribeStatement
mapping gives the summary and the right end state, and a failing Task ends in its named
Fail state with the original error in the Cause.

moto findings (moto 5.2.5), asserted below where they touch our machines:
- A DISTRIBUTED Map's failed items never fail it (moto counts them, logs that the tolerance has
  no effect); the sandbox's sfn_map_tolerance.py fails it past the tolerance, as AWS does.
- ``aws-sdk:redshiftdata:*`` fails with "Unknown service: 'redshiftdata'" as States.Runtime,
  which moto (unlike AWS) lets a States.ALL Catch handle; so does a JSONPath missing from
  the input. The sandbox's sfn_data_limit.py makes States.Runtime and
  States.DataLimitExceeded uncatchable by States.ALL, as on AWS.
- The DISTRIBUTED Map with an s3:getObject JSON ItemReader and our ItemSelector runs.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest

from step_patterns.asl import (
    ChunkedIteratorSettings,
    Choice,
    ChoiceRule,
    Condition,
    Fail,
    JsonPath,
    Pass,
    RetryPolicy,
    StateGraph,
    StateMachine,
    Succeed,
    Wait,
    WaitLoopSettings,
    WaitTime,
    build_chunked_iterator,
    build_wait_loop,
)
from step_patterns.asl import wait_loop
from step_patterns.asl.backoff import backoff_states, init_poll

ARN = "arn:aws:lambda:us-east-1:123456789012:function:step-patterns-missing-{}"
ROLE = "arn:aws:iam::123456789012:role/step-patterns"
NO_RETRY = RetryPolicy(max_attempts=0, interval_seconds=1, max_delay_seconds=1)

VARIANTS = {
    "wait_loop_lambda": lambda: build_wait_loop(
        WaitLoopSettings(statement_starter_arn=ARN.format("start"), statement_status_arn=ARN.format("status"), retry=NO_RETRY)
    ),
    "wait_loop_sdk": lambda: build_wait_loop(WaitLoopSettings(variant="sdk", retry=NO_RETRY)),
    "wait_loop_sdk_workgroup": lambda: build_wait_loop(
        WaitLoopSettings(variant="sdk", sdk_target="workgroup", sdk_auth="iam", sdk_with_parameters=True, sdk_with_statement_name=True)
    ),
    "chunked_iterator_distributed": lambda: build_chunked_iterator(
        ChunkedIteratorSettings(ARN.format("query"), ARN.format("chunk"), ARN.format("report"), retry=NO_RETRY)
    ),
    "chunked_iterator_inline": lambda: build_chunked_iterator(
        ChunkedIteratorSettings(ARN.format("query"), ARN.format("chunk"), ARN.format("report"), map_mode="INLINE")
    ),
    "chunked_iterator_tolerant": lambda: build_chunked_iterator(
        ChunkedIteratorSettings(ARN.format("query"), ARN.format("chunk"), ARN.format("report"), tolerated_failure_percentage=5.0)
    ),
}


@pytest.fixture
def sfn(cloud):
    # The session's server, not mock_aws: leaving mock_aws resets every moto backend in the
    # process, which would wipe the local cloud the other tests share.
    return cloud.client("stepfunctions")


def _run(sfn, machine: StateMachine, execution_input: dict, name: str = "machine"):
    name = f"{name}-{uuid.uuid4().hex[:8]}"  # the server outlives this test
    arn = sfn.create_state_machine(name=name, definition=machine.to_json(), roleArn=ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run", input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running after 30 s"
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return described, events


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_moto_parser_accepts_every_definition(sfn, variant):
    name = f"{variant}-{uuid.uuid4().hex[:8]}"
    arn = sfn.create_state_machine(name=name, definition=VARIANTS[variant]().to_json(), roleArn=ROLE)["stateMachineArn"]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == VARIANTS[variant]().to_dict()


@pytest.mark.parametrize(
    "variant, error, cause_prefix",
    [
        ("wait_loop_lambda", "StartStatementFailed", "Lambda.ResourceNotFoundException: "),
        ("chunked_iterator_distributed", "QueryFailed", "Lambda.ResourceNotFoundException: "),
        # The SDK variant's start failure needs the sandbox's Data API (service-name mapping is
        # process-wide): tests/integration/test_wait_loop_on_sandbox.py covers it.
    ],
)
def test_a_failing_first_task_ends_in_its_named_fail_with_the_original_error(sfn, variant, error, cause_prefix):
    statement = {"sql": "select 1", "parameters": [], "database": "dev", "cluster_identifier": "c", "workgroup_name": None,
                 "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "db_user": None, "statement_name": None}
    described, _ = _run(sfn, VARIANTS[variant](), {**statement, "query": statement, "output": {}}, variant)
    assert described["status"] == "FAILED"
    assert described["error"] == error
    assert described["cause"].startswith(cause_prefix)


def _real_states() -> dict:
    return {state.name: state for state in build_wait_loop(WaitLoopSettings(variant="sdk")).states()}


def _poll_waits(events) -> list[dict]:
    """The poll state each time the loop enters its Wait."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])["poll"]
        for e in events
        if e["type"] == "WaitStateEntered"
    ]


def _backoff_machine(schedule: tuple[int, ...], max_polls: int, wait: Wait) -> StateMachine:
    """InitPoll -> Wait -> CheckPollBudget -> Grow/Hold -> Wait ... -> PollBudgetExhausted (the real states)."""
    fail = _real_states()[wait_loop.POLL_BUDGET_EXHAUSTED]
    statement = {"statement_id": "s-1", "status": "STARTED"}
    states = (
        init_poll(schedule, wait.name, carry={"statement": statement}),
        wait,
        *backoff_states(schedule, max_polls, wait=wait.name, exhausted=fail.name),
        fail,
    )
    return StateMachine(StateGraph(states[0].name, states))


def test_backoff_grows_along_the_schedule_holds_at_max_and_stops_at_the_budget(sfn):
    # Wait 0 s so the test is instant; the schedule values are what a real Wait would use.
    wait = Wait(name="WaitForStatement", time=WaitTime.seconds(0), next="CheckPollBudget")
    described, events = _run(sfn, _backoff_machine((1, 2, 4, 8), 6, wait), {}, "backoff")
    polls = _poll_waits(events)
    assert [p["wait_seconds"] for p in polls] == [1, 2, 4, 8, 8, 8]
    assert [p["polls"] for p in polls] == [1, 2, 3, 4, 5, 6]
    assert [p["step"] for p in polls] == [1, 2, 3, 4, 4, 4]
    assert described["status"] == "FAILED"
    assert described["error"] == "StatementPollBudgetExhausted"
    assert described["cause"] == "Statement s-1 still STARTED after 6 polls (the poll budget)."


def test_wait_reads_its_seconds_from_the_poll_state(sfn):
    wait = Wait(name="WaitForStatement", time=WaitTime.seconds_path("$.poll.wait_seconds"), next="CheckPollBudget")
    described, events = _run(sfn, _backoff_machine((0, 0, 0), 4, wait), {}, "seconds-path")
    assert [p["step"] for p in _poll_waits(events)] == [1, 2, 3, 3]
    assert described["error"] == "StatementPollBudgetExhausted"


def _sdk_status_machine() -> StateMachine:
    """DescribeStatement's response (the execution input) through the SDK variant's real states."""
    real = _real_states()
    seed = Pass(
        name="Seed",
        parameters={
            "statement": {"statement_id": "s-1"},
            "describe_defaults": dict(wait_loop.DESCRIBE_DEFAULTS),
            "poll": {"polls": 1, "step": 1, "wait_seconds": 2, "schedule": [2]},
            "describe": JsonPath("$"),
        },
        next=wait_loop.APPLY_DESCRIBE_DEFAULTS,
    )
    names = [wait_loop.APPLY_DESCRIBE_DEFAULTS, wait_loop.SUMMARIZE_STATEMENT_STATUS, wait_loop.CHECK_STATEMENT_STATUS,
             wait_loop.STATEMENT_FINISHED, wait_loop.STATEMENT_FAILED, wait_loop.STATEMENT_ABORTED,
             wait_loop.UNKNOWN_STATEMENT_STATUS]
    still_running = Succeed(name="CheckPollBudget")  # stands in for the loop
    return StateMachine(StateGraph("Seed", (seed, *(real[n] for n in names), still_running)))


def test_sdk_summary_of_a_finished_statement_is_the_output(sfn):
    response = {"Id": "s-1", "Status": "FINISHED", "ResultRows": 3, "HasResultSet": True, "Duration": 1_234_000_000,
                "QueryString": "select 1", "CreatedAt": "2024-01-01T00:00:00Z"}  # no Error key, as Redshift sends it
    described, _ = _run(sfn, _sdk_status_machine(), response, "finished")
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "statement_id": "s-1", "status": "FINISHED", "error": None, "result_rows": 3, "has_result_set": True,
        "duration_ms": None, "duration_ns": 1_234_000_000, "query": "select 1",
    }


@pytest.mark.parametrize(
    "response, error, cause",
    [
        ({"Id": "s-1", "Status": "FAILED", "Error": 'ERROR: relation "nope" does not exist'},
         "Redshift.StatementFailed", 'ERROR: relation "nope" does not exist'),
        ({"Id": "s-1", "Status": "ABORTED"}, "Redshift.StatementAborted", "Statement s-1 was cancelled (ABORTED)."),
        ({"Id": "s-1", "Status": "PAUSED"}, "Redshift.UnknownStatementStatus",
         "Statement s-1 reported status PAUSED, which this machine does not know."),
    ],
)
def test_sdk_summary_of_a_statement_that_did_not_finish_fails_with_a_named_error(sfn, response, error, cause):
    described, _ = _run(sfn, _sdk_status_machine(), response, "unfinished")
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", error, cause)


def test_sdk_summary_of_a_running_statement_goes_back_to_the_loop(sfn):
    described, events = _run(sfn, _sdk_status_machine(), {"Id": "s-1", "Status": "PICKED"}, "running")
    assert described["status"] == "SUCCEEDED"  # reached the stand-in for CheckPollBudget
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered[-1] == "CheckPollBudget"
    assert json.loads(described["output"])["statement"]["error"] is None


def test_distributed_map_reads_the_manifest_from_s3_and_builds_each_chunk_input(sfn, cloud):
    """The real SyncChunks Map with its processor swapped for a Pass that echoes its input."""
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="step-patterns-chunks")
    manifest = [{"index": i, "key": f"run/chunks/{i:05d}.jsonl", "records": 10} for i in range(3)]
    s3.put_object(Bucket="step-patterns-chunks", Key="run/manifest.json", Body=json.dumps(manifest))
    real = {s.name: s for s in VARIANTS["chunked_iterator_distributed"]().states()}
    echo_map = dataclasses.replace(
        real["SyncChunks"],
        processor=StateGraph("EchoChunk", (Pass(name="EchoChunk"),)),
        result_path="$.iterations",
        catch=(),
        next="Done",
    )
    machine = StateMachine(StateGraph("SyncChunks", (echo_map, Succeed(name="Done"))))
    execution_input = {
        "export": {"bucket": "step-patterns-chunks", "manifest_key": "run/manifest.json"},
        "target": {"external_id_field": "lead_id"},
        "output": {"bucket": "step-patterns-chunks", "prefix": "run/"},
    }
    described, _ = _run(sfn, machine, execution_input, "distributed")
    assert described["status"] == "SUCCEEDED", described.get("cause")
    iterations = json.loads(described["output"])["iterations"]
    # each chunk knows the parent execution (the syncer stops sending once it is stopped)
    assert iterations == [
        {"chunk": entry, "cursor": 0, "target": execution_input["target"], "output": execution_input["output"],
         "execution_arn": described["executionArn"]}
        for entry in manifest
    ]


@pytest.mark.parametrize(
    "tolerated_percentage, caught",
    [(0.0, True), (20.0, True), (25.0, False), (30.0, False)],  # 1 failed chunk of 4 is 25%: a failure only above
)
def test_distributed_map_fails_into_its_catch_once_failed_chunks_exceed_the_tolerance(sfn, cloud, tolerated_percentage, caught):
    """The real SyncChunks Map, Catch and ChunkSyncFailed; chunks with index >= 3 fail (sandbox/sfn_map_tolerance.py)."""
    bucket, prefix = cloud.endpoints.bucket, f"tolerance-{uuid.uuid4().hex[:8]}/"
    manifest = [{"index": i, "key": f"{prefix}chunks/{i:05d}.jsonl", "records": 10} for i in range(4)]
    cloud.client("s3").put_object(Bucket=bucket, Key=f"{prefix}manifest.json", Body=json.dumps(manifest))
    real = {s.name: s for s in build_chunked_iterator(ChunkedIteratorSettings(
        ARN.format("query"), ARN.format("chunk"), ARN.format("report"), tolerated_failure_percentage=tolerated_percentage,
    )).states()}
    failing_processor = StateGraph("IsBadChunk", (
        Choice(name="IsBadChunk", rules=(ChoiceRule(Condition.number_greater_than_equals("$.chunk.index", 3), "BadChunk"),),
               default="ChunkSynced"),
        Fail(name="BadChunk", error="BadChunk", cause="this chunk always fails"),
        Succeed(name="ChunkSynced"),
    ))
    sync_chunks = dataclasses.replace(real["SyncChunks"], processor=failing_processor, next="Done")  # real Catch
    report_stand_in = Pass(name="ReportFailedSync", next="ChunkSyncFailed")  # keeps the caught error at $.error
    machine = StateMachine(StateGraph("SyncChunks", (sync_chunks, report_stand_in, real["ChunkSyncFailed"], Succeed(name="Done"))))
    execution_input = {"export": {"bucket": bucket, "manifest_key": f"{prefix}manifest.json"}, "target": {}, "output": {}}

    described, _ = _run(sfn, machine, execution_input, "tolerance")

    map_run_arn = sfn.list_map_runs(executionArn=described["executionArn"])["mapRuns"][0]["mapRunArn"]
    map_run = sfn.describe_map_run(mapRunArn=map_run_arn)
    assert (map_run["itemCounts"]["total"], map_run["itemCounts"]["failed"]) == (4, 1)
    if caught:
        assert map_run["status"] == "FAILED"
        assert (described["status"], described["error"], described["cause"]) == (
            "FAILED", "ChunkSyncFailed", "States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded")
    else:
        assert map_run["status"] == "SUCCEEDED"
        assert described["status"] == "SUCCEEDED", described.get("cause")
