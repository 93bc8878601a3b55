"""deploy/template.yaml deployed by moto's CloudFormation into the local cloud, and a chunked
iterator sync run through exactly what the stack created (functions, role, bucket).

moto's CloudFormation accepts the real template unchanged but does not apply all of it (see
docs/deploy.md "What the sandbox checks"): it skips AWS::S3::BucketPolicy with a warning and
ignores the bucket's lifecycle rules, public access block and ownership controls and the
functions' Architectures. Those are checked on the template itself in tests/unit/test_template.py.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from pathlib import Path

import pytest

from step_patterns_sandbox.demo_data import seed_leads
from step_lambdas.manifest import FUNCTIONS
from step_patterns.asl import ChunkedIteratorSettings, build_chunked_iterator
from step_patterns_sandbox.bundle import build_package

pytestmark = pytest.mark.timeout(300)

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
PREFIX = "deploytest"  # not the sandbox's own "step-patterns", so the two sets of functions coexist
DAY = "2026-11-26"
LEADS = 12


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_package(tmp_path_factory.mktemp("package") / "step-patterns-lambdas.zip")


@pytest.fixture
def stack(cloud, package):
    """The template deployed as `make deploy` would: zip under its SHA-256 in an artifact bucket."""
    s3, cfn = cloud.client("s3"), cloud.client("cloudformation")
    artifacts = f"artifacts-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=artifacts)
    key = f"step-patterns/{package.sha256_hex}.zip"
    s3.put_object(Bucket=artifacts, Key=key, Body=package.path.read_bytes())
    e = cloud.endpoints
    parameters = {
        "FunctionPrefix": PREFIX, "CodeBucket": artifacts, "CodeKey": key,
        "RedshiftClusterIdentifier": e.cluster_identifier, "Database": e.database,
        "RedshiftSecretArn": e.redshift_secret_arn, "PipedriveSecretArn": e.pipedrive_secret_arn,
        "PipedriveBaseUrl": e.pipedrive_base_url, "RunRetentionDays": "7",
    }
    name = f"step-patterns-test-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*AWS::S3::BucketPolicy.*")  # moto: not supported
        cfn.create_stack(
            StackName=name, TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    yield {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    cfn.delete_stack(StackName=name)


def test_the_stack_creates_the_manifest_s_functions_from_the_uploaded_zip(cloud, stack, package):
    lam = cloud.client("lambda")
    for key, spec in FUNCTIONS.items():
        config = lam.get_function(FunctionName=f"{PREFIX}-{key}")["Configuration"]
        assert (config["Handler"], config["Timeout"], config["MemorySize"], config["Runtime"]) == \
            (spec.handler, spec.timeout_s, spec.memory_mb, "python3.11"), key
        assert config["CodeSha256"] == package.code_sha256  # the very zip `make package` built
        assert config["Role"] == stack["LambdaRoleArn"]
        groups = cloud.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{PREFIX}-{key}")
        assert [g["retentionInDays"] for g in groups["logGroups"]] == [30]
    encryption = cloud.client("s3").get_bucket_encryption(Bucket=stack["BucketName"])
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == \
        {"SSEAlgorithm": "AES256"}
    variable = json.loads(stack["AirflowVariable"])
    assert variable["states_role_arn"] == stack["StatesRoleArn"] and variable["bucket"] == stack["BucketName"]
    assert variable["function_prefix"] == PREFIX == stack["FunctionPrefix"]
    assert variable["pipedrive_secret_arn"] == cloud.endpoints.pipedrive_secret_arn


def test_a_sync_runs_through_what_the_stack_created(cloud, stack):
    seed_leads(cloud.warehouse, days=1, per_day=LEADS, last_day=DAY)
    cloud.pipedrive.reset()
    arns = {key: stack[f"{''.join(p.capitalize() for p in key.split('-'))}FunctionArn"] for key in FUNCTIONS}
    definition = build_chunked_iterator(ChunkedIteratorSettings(
        query_executor_arn=arns["query-executor"], chunk_syncer_arn=arns["chunk-syncer"],
        report_arn=arns["report"], map_mode="DISTRIBUTED",  # the ItemReader reads the stack's bucket
    ))
    sfn = cloud.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"step-patterns-deploytest-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition.to_dict()),
        roleArn=stack["StatesRoleArn"],
    )["stateMachineArn"]
    variable = json.loads(stack["AirflowVariable"])
    run = uuid.uuid4().hex[:8]
    execution_input = {  # what ChunkedIteratorOperator.build_input sends, from the Variable's values
        "query": {"sql": "SELECT lead_id, company, source, score FROM leads ORDER BY lead_id",
                  "database": variable["database"], "cluster_identifier": variable["cluster_identifier"],
                  "secret_arn": variable["redshift_secret_arn"]},
        "target": {"external_id_field": "External ID",
                   "field_mapping": {"lead_id": "external_id", "company": "title",
                                     "source": "Lead source", "score": "Score"},
                   "pipedrive_secret_arn": variable["pipedrive_secret_arn"],
                   "pipedrive_base_url": variable["pipedrive_base_url"],
                   "rate": {"requests": 20, "per_seconds": 2}, "concurrency": 4},
        "output": {"bucket": variable["bucket"], "prefix": f"step-patterns/runs/deploy-test/{run}",
                   "sync_state_prefix": f"step-patterns/sync-state/deploy-test/{run}"},
        "chunk_size": 5,
        "map_mode": "DISTRIBUTED",
    }
    execution = sfn.start_execution(stateMachineArn=machine, name=f"deploy-test-{run}",
                                    input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + 240
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running after 240 s"
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    report = json.loads(described["output"])
    assert (report["records"], report["created"], report["failed"], report["chunks"]) == (LEADS, LEADS, 0, 3)

    companies = dict(cloud.warehouse.execute("SELECT lead_id, company FROM leads"))
    deals = _deals(cloud)
    assert {external_id: deal["title"] for external_id, deal in deals.items()} == companies
    # chunks, results and the sync state were written to the stack's bucket, under the two prefixes
    listed = cloud.client("s3").list_objects_v2(Bucket=stack["BucketName"], Prefix="step-patterns/")["Contents"]
    keys = [item["Key"] for item in listed]
    assert f"step-patterns/runs/deploy-test/{run}/report.json" in keys
    assert any(key.startswith(f"step-patterns/sync-state/deploy-test/{run}/") for key in keys)


def _deals(cloud) -> dict[str, dict]:
    """Every deal in the Pipedrive sandbox by External ID (fails on a duplicate)."""
    import requests

    key = cloud.pipedrive.field_key("External ID")
    response = requests.get(f"{cloud.endpoints.pipedrive_base_url}/api/v2/deals", params={"limit": 500},
                            headers={"x-api-token": "sandbox-pipedrive-token"}, timeout=10).json()
    deals = {}
    for deal in response["data"]:
        external_id = deal["custom_fields"][key]
        assert external_id not in deals, f"duplicate deal for {external_id}"
        deals[external_id] = deal
    return deals
