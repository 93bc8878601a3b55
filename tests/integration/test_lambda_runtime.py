"""The sandbox's Lambda runtime behaves like Lambda where our state machines depend on it."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from step_patterns_sandbox import lambda_runtime

HANDLERS = '''
import os, sys, time

def echo_env(event, context):
    print("hello from the handler")
    return {"greeting": os.environ.get("GREETING"), "function": context.function_name,
            "remaining_ms": context.get_remaining_time_in_millis(), "event": event}

def sleep(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"], "pid": os.getpid()}

class ChunkTooLarge(Exception):
    pass

def fail(event, context):
    raise ChunkTooLarge("record 7 is 300 KiB, over the chunk budget")

def crash(event, context):
    os._exit(3)

def tick(event, context):
    for _ in range(event["ticks"]):
        time.sleep(event["interval"])
        with open(event["path"], "a") as out:
            out.write("tick\\n")
    return {"ticks": event["ticks"]}
'''


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fixture_handlers.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lambda_client(tmp_path_factory):
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    previous_port = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)
    endpoint = f"http://{host}:{port}"
    lambda_runtime.install(tmp_path_factory.mktemp("code"), endpoint, "us-east-1")
    kwargs = dict(endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
    client = boto3.client("lambda", **kwargs)
    role = "arn:aws:iam::123456789012:role/test-lambda"
    boto3.client("iam", **kwargs).create_role(RoleName="test-lambda", AssumeRolePolicyDocument="{}")
    code = _zip(HANDLERS)
    for name, handler, timeout, env in [
        ("echo", "fixture_handlers.echo_env", 30, {"GREETING": "hi"}),
        ("sleepy", "fixture_handlers.sleep", 2, {}),
        ("failing", "fixture_handlers.fail", 10, {}),
        ("crashing", "fixture_handlers.crash", 10, {}),
        ("ticker", "fixture_handlers.tick", 10, {}),
    ]:
        client.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler=handler,
            Code={"ZipFile": code}, Timeout=timeout, Environment={"Variables": env},
        )
    yield client
    lambda_runtime.uninstall()
    server.stop()
    if previous_port is None:
        os.environ.pop("MOTO_PORT", None)
    else:
        os.environ["MOTO_PORT"] = previous_port


def _invoke(client, name, event):
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_handler_gets_its_function_environment_and_real_remaining_time(lambda_client):
    error, payload = _invoke(lambda_client, "echo", {"n": 1})
    assert error is None
    assert payload["greeting"] == "hi"
    assert payload["function"] == "echo"
    assert 25_000 < payload["remaining_ms"] <= 30_000
    assert payload["event"] == {"n": 1}
    assert "GREETING" not in os.environ  # the function's variables never leak into this process


def test_exception_becomes_lambda_error_payload(lambda_client):
    error, payload = _invoke(lambda_client, "failing", {})
    assert error
    assert payload["errorType"] == "ChunkTooLarge"
    assert payload["errorMessage"] == "record 7 is 300 KiB, over the chunk budget"


def test_timeout_kills_the_invocation_like_lambda(lambda_client):
    started = time.monotonic()
    error, payload = _invoke(lambda_client, "sleepy", {"seconds": 30})
    elapsed = time.monotonic() - started
    assert error
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "timed out after 2.00 seconds" in payload["errorMessage"]
    assert elapsed < 10  # returned at the timeout, not after the handler's 30 s
    # the next invocation gets a fresh worker and works
    error, payload = _invoke(lambda_client, "sleepy", {"seconds": 0})
    assert error is None and payload["slept"] == 0


def test_crashed_runtime_reports_exit_error(lambda_client):
    error, payload = _invoke(lambda_client, "crashing", {})
    assert error
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")  # AWS's words


def test_concurrent_invocations_run_in_parallel_workers(lambda_client):
    _invoke(lambda_client, "sleepy", {"seconds": 0})  # warm one worker
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _invoke(lambda_client, "sleepy", {"seconds": 1}), range(4)))
    assert all(error is None for error, _ in results)
    assert len({payload["pid"] for _, payload in results}) == 4  # one worker per in-flight call


def test_logs_reach_cloudwatch_logs(lambda_client):
    _invoke(lambda_client, "echo", {})
    logs = boto3.client(
        "logs", endpoint_url=lambda_client.meta.endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    events = logs.filter_log_events(logGroupName="/aws/lambda/echo")["events"]
    assert any("hello from the handler" in event["message"] for event in events)


def test_injected_kill_ends_the_next_invocation_only(lambda_client):
    lambda_runtime.inject_fault("sleepy", lambda_runtime.KillFault(after_s=0.5, error_type="Runtime.ExitError"))
    error, payload = _invoke(lambda_client, "sleepy", {"seconds": 1.5})
    assert error and payload["errorType"] == "Runtime.ExitError"
    assert "injected fault" in payload["errorMessage"]
    error, payload = _invoke(lambda_client, "sleepy", {"seconds": 0.1})
    assert error is None and payload["slept"] == 0.1


def test_conditional_kill_ends_the_invocation_running_when_the_condition_turns_true(lambda_client, tmp_path):
    ticks = tmp_path / "ticks"

    def written() -> int:
        return len(ticks.read_text().splitlines()) if ticks.exists() else 0

    lambda_runtime.inject_fault("ticker", lambda_runtime.KillFault(when=lambda: written() >= 5,
                                                                   error_type="Runtime.ExitError"))
    # ends before the condition holds: not killed, and the fault stays armed
    error, payload = _invoke(lambda_client, "ticker", {"path": str(ticks), "ticks": 3, "interval": 0.05})
    assert error is None and payload == {"ticks": 3}
    # killed right after its 2nd write (the 5th in all), 50 ms before it would write again
    error, payload = _invoke(lambda_client, "ticker", {"path": str(ticks), "ticks": 10, "interval": 0.05})
    assert error and payload["errorType"] == "Runtime.ExitError"
    assert "injected fault" in payload["errorMessage"]
    assert written() == 5
    # one kill was asked for: the next invocation runs to its end
    error, payload = _invoke(lambda_client, "ticker", {"path": str(ticks), "ticks": 1, "interval": 0})
    assert error is None and written() == 6


def test_a_timed_kill_ends_as_many_invocations_as_asked(lambda_client):
    lambda_runtime.inject_fault("sleepy", lambda_runtime.KillFault(after_s=0.2, error_type="Sandbox.Timedout", times=2))
    for _ in range(2):
        error, payload = _invoke(lambda_client, "sleepy", {"seconds": 1})
        assert error and payload["errorType"] == "Sandbox.Timedout"
    error, payload = _invoke(lambda_client, "sleepy", {"seconds": 0})
    assert error is None


def test_a_kill_fault_takes_a_time_or_a_condition():
    with pytest.raises(ValueError, match="exactly one"):
        lambda_runtime.KillFault()
    with pytest.raises(ValueError, match="exactly one"):
        lambda_runtime.KillFault(after_s=1.0, when=lambda: True)
