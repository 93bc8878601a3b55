"""Airflow connections as credentials, on the local cloud: the operator keeps a secret of its own in
step with the connection (created once, written again only when the token or password changed) and
the execution input carries that secret's ARN, never the token or password."""

from __future__ import annotations

import json
import uuid

import pytest
from airflow.sdk import DAG

from step_patterns.connections import ConnectionProblem, OwnedSecretsHook
from step_patterns.operators import ChunkedIteratorOperator, WaitLoopOperator
from step_patterns_sandbox.cloud import airflow_environment

_RUN = uuid.uuid4().hex[:8]


@pytest.fixture
def aws(cloud, monkeypatch):
    """Airflow's AWS connection pointed at the local cloud; the owned secrets of this test removed after."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", airflow_environment(cloud.endpoints)["AIRFLOW_CONN_AWS_DEFAULT"])
    secrets = cloud.client("secretsmanager")
    yield secrets
    for name in secrets.list_secrets(Filters=[{"Key": "name", "Values": ["step-patterns/"]}])["SecretList"]:
        if _RUN in name["Name"]:
            secrets.delete_secret(SecretId=name["ARN"], ForceDeleteWithoutRecovery=True)


def _connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def _current_version(secrets, arn: str) -> str:
    stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return next(version for version, labels in stages.items() if "AWSCURRENT" in labels)


def _sync_operator(cloud, conn_id: str) -> ChunkedIteratorOperator:
    endpoints = cloud.endpoints
    with DAG("connection_secrets", schedule=None):
        return ChunkedIteratorOperator(
            task_id="sync", sql="SELECT 1", database=endpoints.database, cluster_identifier=endpoints.cluster_identifier,
            secret_arn=endpoints.redshift_secret_arn, role_arn=endpoints.states_role_arn, bucket=endpoints.bucket,
            pipedrive_conn_id=conn_id,
        )


def test_the_pipedrive_token_is_kept_in_an_owned_secret_written_only_when_it_changes(cloud, aws, monkeypatch):
    conn_id = f"pipedrive_{_RUN}"
    first_token, second_token = f"first-token-{_RUN}", f"second-token-{_RUN}"
    _connection(monkeypatch, conn_id, conn_type="pipedrive", host=cloud.endpoints.pipedrive_base_url,
                password=first_token)

    def resolved_input() -> tuple[str, str]:
        operator = _sync_operator(cloud, conn_id)  # a fresh task each time, as each try is
        operator.resolve_connections(OwnedSecretsHook())
        return operator.pipedrive_secret_arn, json.dumps(operator.build_input({}))

    arn, execution_input = resolved_input()
    described = aws.describe_secret(SecretId=arn)
    assert described["Name"] == f"step-patterns/pipedrive/{conn_id}"
    assert {"Key": "managed-by", "Value": "step-patterns"} in described["Tags"]
    assert json.loads(aws.get_secret_value(SecretId=arn)["SecretString"]) == {"api_token": first_token}
    target = json.loads(execution_input)["target"]
    assert (target["pipedrive_secret_arn"], target["pipedrive_base_url"]) == (arn, cloud.endpoints.pipedrive_base_url)
    assert first_token not in execution_input
    first_version = _current_version(aws, arn)

    assert resolved_input()[0] == arn
    assert _current_version(aws, arn) == first_version  # same token: nothing written

    _connection(monkeypatch, conn_id, conn_type="pipedrive", host=cloud.endpoints.pipedrive_base_url,
                password=second_token)
    arn_after, execution_input = resolved_input()
    assert arn_after == arn and _current_version(aws, arn) != first_version
    assert json.loads(aws.get_secret_value(SecretId=arn)["SecretString"]) == {"api_token": second_token}
    assert second_token not in execution_input and first_token not in execution_input


def test_a_secret_step_patterns_did_not_create_is_never_overwritten(aws):
    name = f"step-patterns/pipedrive/someone-else-{_RUN}"
    aws.create_secret(Name=name, SecretString="theirs")
    with pytest.raises(ConnectionProblem, match="exists but is not managed by step-patterns"):
        OwnedSecretsHook().ensure_owned_secret(name, "ours", "a test token")
    assert aws.get_secret_value(SecretId=name)["SecretString"] == "theirs"


def test_a_redshift_connection_becomes_a_secret_the_data_api_accepts(cloud, aws, monkeypatch):
    conn_id, password = f"redshift_{_RUN}", f"redshift-password-{_RUN}"
    endpoints = cloud.endpoints
    _connection(monkeypatch, conn_id, conn_type="redshift", schema=endpoints.database, login="etl",
                password=password, extra={"cluster_identifier": endpoints.cluster_identifier})
    with DAG("connection_secrets", schedule=None):
        operator = WaitLoopOperator(task_id="wait", sql="SELECT 42 AS answer", role_arn=endpoints.states_role_arn,
                                    redshift_conn_id=conn_id)
    operator.resolve_connections(OwnedSecretsHook())
    statement = operator.build_input({})
    assert password not in json.dumps(statement)
    assert (statement["database"], statement["cluster_identifier"], statement["db_user"]) == (
        endpoints.database, endpoints.cluster_identifier, None)
    secret = json.loads(aws.get_secret_value(SecretId=statement["secret_arn"])["SecretString"])
    assert secret == {"username": "etl", "password": password}  # the shape the Data API reads
    data_api = cloud.client("redshift-data")
    started = data_api.execute_statement(  # refused (ValidationException) unless the secret is usable
        ClusterIdentifier=statement["cluster_identifier"], Database=statement["database"],
        SecretArn=statement["secret_arn"], Sql=statement["sql"],
    )
    assert started["Id"]
