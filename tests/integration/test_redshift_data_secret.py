"""The sandbox's Data API reads SecretArn at ExecuteStatement / BatchExecuteStatement, as AWS does.

Through a real boto3 client and the local cloud's moto server; the secrets live in the same
moto Secrets Manager the product's Lambdas read.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from step_patterns_sandbox.redshift_data.db_secret import EMPTY_CREDENTIALS


@pytest.fixture
def data_api(cloud):
    return cloud.client("redshift-data")


def new_secret(cloud, secret_string: str) -> str:
    name = f"redshift-data-secret-test/{uuid.uuid4().hex[:8]}"
    return cloud.client("secretsmanager").create_secret(Name=name, SecretString=secret_string)["ARN"]


def target(cloud, **auth) -> dict:
    return {"Database": cloud.endpoints.database, "ClusterIdentifier": cloud.endpoints.cluster_identifier, **auth}


def refusal(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def named_statements(data_api, name: str) -> list[dict]:
    return data_api.list_statements(StatementName=name, Status="ALL")["Statements"]


def test_a_secret_that_does_not_exist_refuses_the_call_naming_the_arn(cloud, data_api):
    existing = cloud.endpoints.redshift_secret_arn
    missing = existing.rsplit(":", 1)[0] + f":no-such-secret-{uuid.uuid4().hex[:6]}-AbCdEf"
    name = f"missing-secret-{uuid.uuid4().hex[:8]}"

    single = refusal(lambda: data_api.execute_statement(
        Sql="SELECT 1", StatementName=name, **target(cloud, SecretArn=missing)))
    batch = refusal(lambda: data_api.batch_execute_statement(
        Sqls=["SELECT 1", "SELECT 2"], StatementName=name, **target(cloud, SecretArn=missing)))

    expected = ("ValidationException", f"Secrets Manager can't find the specified secret: {missing}")
    assert single == expected and batch == expected
    assert named_statements(data_api, name) == []  # refused at the call: nothing was queued


@pytest.mark.parametrize("secret_string", [
    pytest.param(json.dumps({"username": "sync"}), id="no-password"),
    pytest.param(json.dumps({"username": "", "password": "pw"}), id="empty-username"),
    pytest.param(json.dumps({"user": "sync", "pass": "pw"}), id="other-keys"),
    pytest.param("sync:pw", id="not-json"),
])
def test_a_secret_without_username_and_password_is_refused_with_aws_s_message(cloud, data_api, secret_string):
    arn = new_secret(cloud, secret_string)
    code, message = refusal(lambda: data_api.execute_statement(Sql="SELECT 1", **target(cloud, SecretArn=arn)))
    assert (code, message) == ("ValidationException", EMPTY_CREDENTIALS)


def test_a_readable_secret_runs_the_statement_and_other_authentication_reads_none(cloud, data_api):
    arn = new_secret(cloud, json.dumps({"username": "sync", "password": "pw", "dbClusterIdentifier": "c"}))
    with_secret = data_api.execute_statement(Sql="SELECT 41 + 1", **target(cloud, SecretArn=arn))
    assert with_secret["SecretArn"] == arn
    batch = data_api.batch_execute_statement(Sqls=["SELECT 1", "SELECT 2"], **target(cloud, SecretArn=arn))
    # DbUser and the caller's IAM identity (neither given) never touch Secrets Manager
    with_db_user = data_api.execute_statement(Sql="SELECT 1", **target(cloud, DbUser="awsuser"))
    with_iam = data_api.execute_statement(Sql="SELECT 1", **target(cloud))

    for submitted in (with_secret, batch, with_db_user, with_iam):
        assert cloud.warehouse.wait(submitted["Id"]) == "FINISHED"
    result = data_api.get_statement_result(Id=with_secret["Id"])
    assert result["Records"] == [[{"longValue": 42}]]
