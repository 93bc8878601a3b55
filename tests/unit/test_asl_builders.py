"""The two machines: golden JSON, statelint, settings validation, history budget.

Regenerate the goldens after an intended change with ``UPDATE_GOLDEN=1 uv run pytest tests/unit/test_asl_builders.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from statelint.linter import Linter

from step_patterns.asl import (
    ChunkedIteratorSettings,
    RetryPolicy,
    WaitLoopSettings,
    build_chunked_iterator,
    build_wait_loop,
    history_budget,
)

GOLDEN = Path(__file__).parent / "golden"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:step-patterns-{}"
LAMBDAS = dict(statement_starter_arn=ARN.format("statement-start"), statement_status_arn=ARN.format("statement-status"))
CHUNK_LAMBDAS = dict(
    query_executor_arn=ARN.format("query-executor"), chunk_syncer_arn=ARN.format("chunk-syncer"), report_arn=ARN.format("report")
)

MACHINES = {
    "wait_loop_lambda": lambda: build_wait_loop(WaitLoopSettings(**LAMBDAS)),
    "wait_loop_sdk_cluster_secret": lambda: build_wait_loop(WaitLoopSettings(variant="sdk")),
    "wait_loop_sdk_workgroup_iam_parameters": lambda: build_wait_loop(
        WaitLoopSettings(
            variant="sdk", sdk_target="workgroup", sdk_auth="iam", sdk_with_parameters=True, sdk_with_statement_name=True,
            min_seconds=5, max_seconds=300, factor=1.5, max_polls=200, timeout_seconds=86_400,
        )
    ),
    "wait_loop_sdk_cluster_db_user": lambda: build_wait_loop(WaitLoopSettings(variant="sdk", sdk_auth="db_user")),
    "chunked_iterator_distributed": lambda: build_chunked_iterator(ChunkedIteratorSettings(**CHUNK_LAMBDAS)),
    "chunked_iterator_inline": lambda: build_chunked_iterator(
        ChunkedIteratorSettings(**CHUNK_LAMBDAS, map_mode="INLINE", max_concurrency=4)
    ),
    "chunked_iterator_distributed_tolerant": lambda: build_chunked_iterator(
        ChunkedIteratorSettings(**CHUNK_LAMBDAS, max_concurrency=3, tolerated_failure_percentage=5.0)
    ),
}

# statelint 3.1 lags AWS and moto on two Map fields; every other finding fails the test.
# - ReaderConfig.InputType: required by AWS to read a JSON array with s3:getObject.
# - ToleratedFailurePercentage as a float: moto's parser rejects an integer; AWS takes both.
STATELINT_KNOWN_GAPS = (
    'Field "InputType" not allowed in State Machine.States.SyncChunks.ItemReader.ReaderConfig',
    "State Machine.States.SyncChunks.ToleratedFailurePercentage is 5.0 but should be an Integer",
)


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_definition_matches_golden(name):
    text = MACHINES[name]().to_json() + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden for {name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path}; UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_statelint_accepts_every_variant(name):
    problems = [p for p in Linter.validate(MACHINES[name]().to_json()) if p not in STATELINT_KNOWN_GAPS]
    assert problems == []


def test_statelint_cli_accepts_rendered_wait_loop(tmp_path):
    path = tmp_path / "wait_loop.json"
    path.write_text(MACHINES["wait_loop_lambda"]().to_json())
    statelint = Path(sys.executable).with_name("statelint")
    result = subprocess.run([str(statelint), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendering_is_deterministic_and_hash_tracks_changes():
    first, second = MACHINES["wait_loop_lambda"](), MACHINES["wait_loop_lambda"]()
    assert first.to_json() == second.to_json()
    assert first.definition_hash() == second.definition_hash()
    other = build_wait_loop(WaitLoopSettings(**LAMBDAS, max_seconds=120))
    assert other.definition_hash() != first.definition_hash()


# ---------------------------------------------------------------- wait loop behaviour in the definition


def _states(machine):
    return machine.to_dict()["States"]


def test_wait_loop_status_choice_routes_every_redshift_status():
    states = _states(MACHINES["wait_loop_lambda"]())
    choice = states["CheckStatementStatus"]
    routes = {rule["StringEquals"]: rule["Next"] for rule in choice["Choices"] if "StringEquals" in rule}
    assert routes == {"FINISHED": "StatementFinished", "FAILED": "StatementFailed", "ABORTED": "StatementAborted"}
    running = [rule for rule in choice["Choices"] if "Or" in rule]
    assert {c["StringEquals"] for c in running[0]["Or"]} == {"SUBMITTED", "PICKED", "STARTED"}
    assert running[0]["Next"] == "CheckPollBudget"
    assert choice["Default"] == "UnknownStatementStatus"
    assert states["StatementFailed"] == {
        "Type": "Fail", "Comment": "Redshift's error message is the Cause.",
        "Error": "Redshift.StatementFailed", "CausePath": "$.statement.error",
    }
    assert states["StatementAborted"]["Error"] == "Redshift.StatementAborted"
    assert states["UnknownStatementStatus"]["Error"] == "Redshift.UnknownStatementStatus"
    assert states["PollBudgetExhausted"]["Error"] == "StatementPollBudgetExhausted"
    assert states["StatementFinished"] == {
        "Type": "Succeed", "Comment": "The statement summary is the execution output.", "OutputPath": "$.statement",
    }


def test_wait_loop_variants_share_the_loop_and_differ_only_in_the_calls():
    lambda_states = _states(MACHINES["wait_loop_lambda"]())
    sdk_states = _states(MACHINES["wait_loop_sdk_cluster_secret"]())
    shared = ["WaitForStatement", "CheckStatementStatus", "CheckPollBudget", "GrowBackoff", "HoldBackoff",
              "StatementFinished", "StatementFailed", "StatementAborted", "UnknownStatementStatus",
              "PollBudgetExhausted", "StartStatementFailed", "GetStatementStatusFailed"]
    for name in shared:
        assert lambda_states[name] == sdk_states[name], name
    assert lambda_states["StartStatement"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert lambda_states["StartStatement"]["Parameters"]["Payload.$"] == "$"
    assert lambda_states["StartStatement"]["ResultSelector"] == {"statement_id.$": "$.Payload.statement_id"}
    assert sdk_states["StartStatement"]["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:executeStatement"
    assert sdk_states["GetStatementStatus"]["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:describeStatement"
    summary = sdk_states["SummarizeStatementStatus"]["Parameters"]["statement"]
    lambda_summary = lambda_states["GetStatementStatus"]["ResultSelector"]
    assert {k.removesuffix(".$") for k in summary} == {k.removesuffix(".$") for k in lambda_summary}


def test_sdk_variant_parameters_follow_build_time_settings():
    cluster = _states(MACHINES["wait_loop_sdk_cluster_secret"]())["StartStatement"]["Parameters"]
    assert cluster["ClusterIdentifier.$"] == "$.cluster_identifier" and cluster["SecretArn.$"] == "$.secret_arn"
    assert not {"WorkgroupName.$", "DbUser.$", "Parameters.$", "StatementName.$"} & cluster.keys()
    workgroup = _states(MACHINES["wait_loop_sdk_workgroup_iam_parameters"]())["StartStatement"]["Parameters"]
    assert workgroup["WorkgroupName.$"] == "$.workgroup_name" and workgroup["Parameters.$"] == "$.parameters"
    assert workgroup["StatementName.$"] == "$.statement_name"
    assert not {"ClusterIdentifier.$", "SecretArn.$", "DbUser.$"} & workgroup.keys()
    db_user = _states(MACHINES["wait_loop_sdk_cluster_db_user"]())["StartStatement"]["Parameters"]
    assert db_user["DbUser.$"] == "$.db_user" and "SecretArn.$" not in db_user
    # one idempotency token per execution, so retries never run the SQL twice
    assert cluster["ClientToken.$"] == "States.Hash($$.Execution.Id, 'MD5')"


def test_every_task_retries_transient_errors_and_catches_into_a_named_fail():
    lambda_errors = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                     "Lambda.TooManyRequestsException"}
    for name in ("wait_loop_lambda", "chunked_iterator_distributed", "chunked_iterator_inline"):
        machine = MACHINES[name]()
        tasks = [s for s in machine.states() if s.type == "Task"]
        assert tasks
        for task in tasks:
            rendered = task.render()
            assert set(rendered["Retry"][0]["ErrorEquals"]) == lambda_errors, task.name
            assert rendered["Retry"][0]["BackoffRate"] == 2.0
    sdk_retry = _states(MACHINES["wait_loop_sdk_cluster_secret"]())["GetStatementStatus"]["Retry"][0]["ErrorEquals"]
    assert "RedshiftData.ThrottlingException" in sdk_retry
    chunked = _states(MACHINES["chunked_iterator_distributed"]())
    for task, fail in (("RunQuery", "QueryFailed"), ("ReportFailedSync", "ChunkSyncFailed"), ("Report", "ReportFailed")):
        assert chunked[task]["Catch"] == [{"ErrorEquals": ["States.ALL"], "Next": fail, "ResultPath": "$.error"}]
        assert chunked[fail]["Error"] == fail
        assert chunked[fail]["CausePath"] == "States.Format('{}: {}', $.error.Error, $.error.Cause)"
    # a failed Map is reported first (what never synced and why), and never ends in success
    assert chunked["SyncChunks"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "Next": "ReportFailedSync", "ResultPath": "$.error"}]
    assert chunked["ReportFailedSync"]["Next"] == "ChunkSyncFailed" and chunked["ReportFailedSync"]["ResultPath"] is None
    assert chunked["ReportFailedSync"]["Parameters"]["Payload"]["sync_error.$"] == "$.error"


# ---------------------------------------------------------------- chunked iterator


def test_distributed_map_reads_the_manifest_from_s3():
    sync = _states(MACHINES["chunked_iterator_distributed"]())["SyncChunks"]
    assert sync["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.export.bucket", "Key.$": "$.export.manifest_key"},
    }
    assert "ItemsPath" not in sync
    assert sync["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert sync["MaxConcurrency"] == 1
    assert sync["ResultPath"] is None
    assert sync["ItemSelector"] == {"chunk.$": "$$.Map.Item.Value", "cursor": 0, "target.$": "$.target",
                                    "output.$": "$.output", "execution_arn.$": "$$.Execution.Id"}
    assert "ToleratedFailurePercentage" not in sync  # 0 is the ASL default
    tolerant = _states(MACHINES["chunked_iterator_distributed_tolerant"]())["SyncChunks"]
    assert tolerant["ToleratedFailurePercentage"] == 5.0 and isinstance(tolerant["ToleratedFailurePercentage"], float)


def test_inline_map_iterates_over_the_items_the_query_returns():
    states = _states(MACHINES["chunked_iterator_inline"]())
    assert states["SyncChunks"]["ItemsPath"] == "$.export.items"
    assert "ItemReader" not in states["SyncChunks"]
    assert states["SyncChunks"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert states["RunQuery"]["ResultSelector"]["items.$"] == "$.Payload.items"
    assert "items.$" not in _states(MACHINES["chunked_iterator_distributed"]())["RunQuery"]["ResultSelector"]


def test_chunk_loop_continues_with_the_returned_cursor_and_stops_without_progress():
    inner = _states(MACHINES["chunked_iterator_distributed"]())["SyncChunks"]["ItemProcessor"]["States"]
    assert inner["ContinueChunk"]["Parameters"]["cursor.$"] == "$.sync.cursor"
    assert inner["ContinueChunk"]["Next"] == "SyncChunk"
    rules = inner["CheckChunkDone"]["Choices"]
    assert rules[0] == {"Variable": "$.sync.done", "BooleanEquals": True, "Next": "ChunkSynced"}
    assert rules[1]["Next"] == "ContinueChunk"
    assert {"Variable": "$.sync.cursor", "NumericGreaterThanPath": "$.cursor"} in rules[1]["And"]
    assert inner["CheckChunkDone"]["Default"] == "ChunkSyncStalled"


def test_report_gets_export_output_and_execution_and_its_payload_is_the_output():
    report = _states(MACHINES["chunked_iterator_distributed"]())["Report"]
    assert report["Parameters"]["Payload"] == {
        "export.$": "$.export", "output.$": "$.output",
        "execution_name.$": "$$.Execution.Name", "execution_start_time.$": "$$.Execution.StartTime",
    }
    assert report["OutputPath"] == "$.Payload" and report["End"] is True


# ---------------------------------------------------------------- settings validation


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(min_seconds=30, max_seconds=10), "min_seconds (30) must not exceed max_seconds (10)"),
        (dict(factor=0.5), "factor must be a finite number >= 1.0"),
        (dict(min_seconds=0), "min_seconds must be a whole number of seconds >= 1"),
        (dict(max_polls=0), "max_polls must be an integer >= 1 (the poll budget), got 0"),
        (dict(timeout_seconds=0), "timeout_seconds must be an integer in [1, 31536000]"),
        (dict(timeout_seconds=2), "timeout_seconds (2) must exceed min_seconds (2)"),
        (dict(variant="step"), "variant must be 'lambda' or 'sdk'"),
        (dict(statement_status_arn=None), "the lambda variant needs statement_status_arn"),
        (dict(variant="sdk", sdk_target="workgroup", sdk_auth="db_user"), "sdk_auth='db_user' only works with a provisioned cluster"),
        (dict(min_seconds=1, max_seconds=3600, factor=1.01), "grows 1s to 3600s in more than 64 steps"),
    ],
)
def test_invalid_wait_loop_settings_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError) as error:
        WaitLoopSettings(**{**LAMBDAS, **overrides})
    assert message in str(error.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(map_mode="PARALLEL"), "map_mode must be one of DISTRIBUTED, INLINE, got 'PARALLEL'"),
        (dict(max_concurrency=0), "max_concurrency must be an integer in [1, 10000]"),
        (dict(map_mode="INLINE", max_concurrency=100), "max_concurrency must be an integer in [1, 40] with map_mode='INLINE' (Step Functions' limit), got 100"),
        (dict(tolerated_failure_percentage=101), "tolerated_failure_percentage must be a number in [0, 100]"),
        (dict(map_mode="INLINE", tolerated_failure_percentage=1.0), "tolerated_failure_percentage needs map_mode='DISTRIBUTED'"),
        (dict(report_arn="report"), "report_arn must be a Lambda ARN"),
    ],
)
def test_invalid_chunked_iterator_settings_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError) as error:
        ChunkedIteratorSettings(**{**CHUNK_LAMBDAS, **overrides})
    assert message in str(error.value)


def test_invalid_retry_policy_is_refused():
    with pytest.raises(ValueError, match="retry max_delay_seconds"):
        RetryPolicy(interval_seconds=10, max_delay_seconds=5)


# ---------------------------------------------------------------- history budget


def test_history_budget_counts_a_poll_from_the_loop_states():
    lambda_settings = WaitLoopSettings(**LAMBDAS)
    budget = history_budget(lambda_settings)
    # Wait 2 + Task (5 + 3 events x 5 retry attempts) + 2 Choices 2+2 + backoff Pass 2
    assert budget.events_per_poll == 2 + (5 + 15) + 2 + 2 + 2
    # execution 2 + StartStatement 20 + InitPoll 2 + Succeed 2
    assert budget.fixed_events == 2 + 20 + 2 + 2
    assert budget.limit == 20_000
    sdk = history_budget(WaitLoopSettings(variant="sdk"))
    assert sdk.events_per_poll == budget.events_per_poll + 4  # two Passes map DescribeStatement
    fewer_retries = history_budget(WaitLoopSettings(**LAMBDAS, retry=RetryPolicy(max_attempts=1)))
    assert fewer_retries.events_per_poll == budget.events_per_poll - 12


def test_history_budget_refuses_a_loop_that_could_near_the_event_cap():
    settings = WaitLoopSettings(**LAMBDAS)
    safe = history_budget(settings).max_safe_polls
    build_wait_loop(WaitLoopSettings(**LAMBDAS, max_polls=safe))  # the largest safe budget builds
    with pytest.raises(ValueError) as error:
        build_wait_loop(WaitLoopSettings(**LAMBDAS, max_polls=safe + 1))
    assert f"use max_polls <= {safe}" in str(error.value)
    assert "25,000-event cap" in str(error.value)
    # fewer retries make room for more polls
    build_wait_loop(WaitLoopSettings(**LAMBDAS, max_polls=safe + 1, retry=RetryPolicy(max_attempts=2)))


def test_default_budget_and_timeout_fit_together():
    settings = WaitLoopSettings(**LAMBDAS)
    waited = sum(settings.schedule) + settings.schedule[-1] * (settings.max_polls - len(settings.schedule))
    # the poll budget covers at least the machine timeout: polls run out no earlier than time does
    assert waited >= settings.timeout_seconds * 0.95
    assert json.loads(build_wait_loop(settings).to_json())["TimeoutSeconds"] == settings.timeout_seconds
