"""Step Functions' aws-sdk:redshiftdata integration on the sandbox (moto server, real SQL)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from step_patterns_sandbox import redshift_data

POLL = {
    "StartAt": "Execute",
    "States": {
        "Execute": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:redshiftdata:executeStatement",
            "Parameters": {"ClusterIdentifier.$": "$.cluster", "Database": "dev", "Sql.$": "$.sql"},
            "Catch": [{"ErrorEquals": ["RedshiftData.ValidationException"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Describe",
        },
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:redshiftdata:describeStatement",
            "Parameters": {"Id.$": "$.Id"},
            "Next": "Done?",
        },
        "Done?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.Status", "StringEquals": "FINISHED", "Next": "Finished"},
                {"Variable": "$.Status", "StringEquals": "FAILED", "Next": "Failed"},
            ],
            "Default": "Wait",
        },
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Describe"},
        "Finished": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "Redshift.StatementFailed", "CausePath": "$.Error"},
        "Rejected": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}


@pytest.fixture(scope="module")
def sfn(tmp_path_factory):
    redshift_data.install(f"duckdb://{tmp_path_factory.mktemp('sfn') / 'warehouse.duckdb'}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        env.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
        env.setenv("MOTO_PORT", str(port))  # the interpreter calls back to localhost:$MOTO_PORT
        client = boto3.client(
            "stepfunctions",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        arn = client.create_state_machine(
            name="redshift-poll", definition=json.dumps(POLL), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        yield client, arn
    server.stop()
    redshift_data.uninstall()


def run_execution(sfn, name, payload):
    client, arn = sfn
    execution = client.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = client.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    pytest.fail(f"execution {name} still RUNNING after 30 s")


def test_execute_then_describe_until_finished(sfn):
    described = run_execution(sfn, "ok", {"cluster": "c1", "sql": "SELECT 42 AS answer"})
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["Status"] == "FINISHED" and output["ResultRows"] == 1 and output["HasResultSet"] is True
    assert output["QueryString"] == "SELECT 42 AS answer"
    assert output["CreatedAt"].endswith("Z")  # timestamps are JSON strings in the execution output


def test_a_failed_statement_reaches_the_fail_state_with_the_engine_message(sfn):
    described = run_execution(sfn, "bad-sql", {"cluster": "c1", "sql": "SELECT * FROM missing_table"})
    assert described["status"] == "FAILED"
    assert described["error"] == "Redshift.StatementFailed"
    assert "missing_table" in described["cause"]


def test_a_rejected_request_is_named_like_aws(sfn):
    described = run_execution(sfn, "no-cluster", {"cluster": "", "sql": "SELECT 1"})
    assert described["status"] == "FAILED"
    assert described["error"] == "RedshiftData.ValidationException"
    assert "ClusterIdentifier" in described["cause"]
