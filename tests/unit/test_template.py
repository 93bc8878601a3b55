"""deploy/template.yaml: generated from the manifest, cfn-lint clean, least privilege."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from step_lambdas.manifest import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"


def _load_renderer():
    spec = importlib.util.spec_from_file_location("render_template", ROOT / "deploy" / "render_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_template = _load_renderer()


@pytest.fixture(scope="module")
def template() -> dict:
    return render_template.build_template()


def _allow_statements(template):
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    yield name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_the_committed_template_is_the_rendered_one():
    assert TEMPLATE.read_text() == render_template.render(), \
        "deploy/template.yaml is stale: run `uv run python deploy/render_template.py`"
    assert render_template.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_template(tmp_path, capsys):
    stale = tmp_path / "template.yaml"
    stale.write_text(TEMPLATE.read_text().replace("MemorySize: 1024", "MemorySize: 128"))
    assert render_template.main(["--check", "--output", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_manifest_function_is_deployed_as_specified(template):
    functions = {r["Properties"]["Handler"]: r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == len(FUNCTIONS)
    for key, spec in FUNCTIONS.items():
        props = functions[spec.handler]
        assert props["FunctionName"] == {"Fn::Sub": f"${{FunctionPrefix}}-{key}"}
        assert (props["Timeout"], props["MemorySize"], props["Runtime"]) == (spec.timeout_s, spec.memory_mb, "python3.11")
        assert props["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}


def test_no_allow_statement_has_a_wildcard_action(template):
    for name, statement in _allow_statements(template):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{name} {statement.get('Sid')}: wildcard action {action}"


def test_the_only_wildcard_resource_is_the_data_api_statements_pinned_to_the_role(template):
    wildcard = [(name, s) for name, s in _allow_statements(template) if "*" in _as_list(s["Resource"])]
    assert {s["Sid"] for _, s in wildcard} == {"DataApiOwnStatements"}
    for name, statement in wildcard:
        role = name.removesuffix("Policy")
        assert set(statement["Action"]) == {"redshift-data:DescribeStatement", "redshift-data:GetStatementResult",
                                             "redshift-data:CancelStatement"}
        assert statement["Condition"]["StringLike"]["redshift-data:statement-owner-iam-userid"] == [
            {"Fn::GetAtt": [role, "RoleId"]}, {"Fn::Sub": f"${{{role}.RoleId}}:*"}]
    assert "# Resource \"*\" is unavoidable" in TEMPLATE.read_text()


# The secrets the operators keep for Airflow connections (step_patterns.connections).
OWNED = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:step-patterns/%s/*"


def test_step_functions_invokes_only_the_bundle_and_reads_only_run_objects(template):
    statements = {s["Sid"]: s for name, s in _allow_statements(template) if name == "StatesRolePolicy"}
    invoked = {ref["Fn::GetAtt"][0] if "Fn::GetAtt" in ref else ref["Fn::Sub"]
               for ref in statements["InvokeBundleFunctions"]["Resource"]}
    functions = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert invoked == functions | {f"${{{n}.Arn}}:*" for n in functions}
    assert statements["ReadRunManifests"]["Resource"] == {"Fn::Sub": "${Bucket.Arn}/step-patterns/runs/*"}
    # never a Pipedrive token: only the Redshift secret and those kept for Airflow redshift connections
    assert statements["ReadSecrets"]["Resource"] == [{"Ref": "RedshiftSecretArn"}, {"Fn::Sub": OWNED % "redshift"}]
    assert statements["RunMapChildren"]["Resource"]["Fn::Sub"].endswith(":stateMachine:step-patterns-*")


def test_lambda_objects_are_scoped_to_the_two_prefixes(template):
    statements = {s["Sid"]: s for name, s in _allow_statements(template) if name == "LambdaRolePolicy"}
    assert statements["RunAndSyncStateObjects"]["Resource"] == [
        {"Fn::Sub": "${Bucket.Arn}/step-patterns/runs/*"}, {"Fn::Sub": "${Bucket.Arn}/step-patterns/sync-state/*"}]
    assert statements["ReadSecrets"]["Resource"] == [
        {"Ref": "RedshiftSecretArn"}, {"Ref": "PipedriveSecretArn"},
        {"Fn::Sub": OWNED % "redshift"}, {"Fn::Sub": OWNED % "pipedrive"}]  # kept for Airflow connections


def test_bucket_is_encrypted_private_and_expires_runs_but_never_the_sync_state(template):
    props = template["Resources"]["Bucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    expiring = [r for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expiring == [{"Id": "ExpireRunObjects", "Status": "Enabled", "Prefix": "step-patterns/runs/",
                         "ExpirationInDays": {"Ref": "RunRetentionDays"}}]


def test_prefixes_are_the_operator_defaults():
    """The policies' prefixes must cover where ChunkedIteratorOperator writes by default."""
    from step_lambdas.contract import defaults

    assert defaults.RUNS_PREFIX.startswith(render_template.RUNS_PREFIX)
    assert defaults.SYNC_STATE_PREFIX.startswith(render_template.SYNC_STATE_PREFIX)
    source = (ROOT / "plugins/step_patterns/operators/chunked_iterator.py").read_text()
    assert "defaults.RUNS_PREFIX" in source and "defaults.SYNC_STATE_PREFIX" in source
    base = (ROOT / "plugins/step_patterns/operators/base.py").read_text()
    assert "stable_name(defaults.MACHINE_NAME_PREFIX, " in base  # machine names start with STATE_MACHINE_PREFIX


def test_the_airflow_variable_output_has_the_sandbox_s_keys_plus_the_function_prefix(template):
    from step_patterns_sandbox.cloud import Endpoints, airflow_environment

    endpoints = Endpoints(*(["x"] * 5), {}, *(["x"] * 6))
    sandbox_keys = set(json.loads(airflow_environment(endpoints)["AIRFLOW_VAR_STEP_PATTERNS"]))
    text = template["Outputs"]["AirflowVariable"]["Value"]["Fn::Sub"]
    keys = set(json.loads(re.sub(r"\$\{[^}]+\}", "v", text)))
    assert keys == sandbox_keys | {"function_prefix"}


def test_the_template_is_plain_yaml_cloudformation_reads():
    assert yaml.safe_load(TEMPLATE.read_text()) == render_template.build_template()
