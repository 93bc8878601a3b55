"""The local cloud holds functions and executions to AWS's limits: a function's memory size,
Lambda's 6 MB response and Step Functions' 256 KB state payload."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import pytest

PROBE = '''
import os

def handler(event, context):
    if "allocate_mb" in event:
        hoard = b"x" * (event["allocate_mb"] * 2**20)  # written, so resident
        return {"allocated_mb": len(hoard) // 2**20, "pid": os.getpid()}
    return "x" * event["return_chars"]
'''
MEMORY_MB = 128


@pytest.fixture
def probe(cloud) -> str:
    """A tiny function with 128 MB (Lambda's smallest size); its ARN."""
    client = cloud.client("lambda")
    name = "limits-probe"
    try:
        return client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    except client.exceptions.ResourceNotFoundException:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("limits_probe.py", PROBE)
        return client.create_function(
            FunctionName=name, Runtime="python3.11", Role=cloud.endpoints.lambda_role_arn,
            Handler="limits_probe.handler", Code={"ZipFile": buffer.getvalue()}, Timeout=30, MemorySize=MEMORY_MB,
        )["FunctionArn"]


def _invoke(cloud, arn: str, event: dict) -> tuple[str | None, object]:
    response = cloud.client("lambda").invoke(FunctionName=arn, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_a_function_past_its_memory_size_is_killed_out_of_memory_and_the_next_call_works(cloud, probe):
    error, payload = _invoke(cloud, probe, {"allocate_mb": 32})
    assert error is None and payload["allocated_mb"] == 32
    first_worker = payload["pid"]

    error, payload = _invoke(cloud, probe, {"allocate_mb": MEMORY_MB})  # the interpreter alone is ~10 MB more
    assert error
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")

    error, payload = _invoke(cloud, probe, {"allocate_mb": 32})
    assert error is None and payload["allocated_mb"] == 32
    assert payload["pid"] != first_worker  # the killed environment was replaced
    logs = cloud.client("logs").filter_log_events(logGroupName="/aws/lambda/limits-probe")["events"]
    assert any("Memory Size: 128 MB" in event["message"] and "Error Type: Runtime.OutOfMemory" in event["message"]
               for event in logs)


def test_a_response_over_6_mb_fails_the_invocation(cloud, probe):
    error, payload = _invoke(cloud, probe, {"return_chars": 6_291_556})  # + 2 quotes: 6,291,558 bytes
    assert error
    assert payload == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size (6291558 bytes) exceeded maximum allowed payload size "
        "(6291556 bytes).",
    }


def test_a_state_result_over_256_kb_fails_the_execution_and_states_all_does_not_catch_it(cloud, probe):
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Big",
        "States": {
            "Big": {
                "Type": "Task", "Resource": probe, "Parameters": {"return_chars.$": "$.chars"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    name = f"limits-{uuid.uuid4().hex[:8]}"
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                       roleArn=cloud.endpoints.states_role_arn)["stateMachineArn"]

    def run(chars: int) -> dict:
        execution = sfn.start_execution(stateMachineArn=machine, name=f"{name}-{chars}",
                                        input=json.dumps({"chars": chars}))["executionArn"]
        deadline = time.monotonic() + 60
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution is still running after 60 s"
            time.sleep(0.1)
        return described

    assert run(200_000)["status"] == "SUCCEEDED"
    described = run(300_000)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    assert described["cause"] == (f"The state/task '{probe}' returned a result with a size exceeding "
                                  "the maximum number of bytes service limit.")
