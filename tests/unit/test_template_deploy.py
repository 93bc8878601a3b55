"""deploy/deploy.py (`make deploy`): the AWS CLI commands it plans, and what it refuses."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "deploy" / "deploy.py")
deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy)

ENV = {
    "ARTIFACT_BUCKET": "artifacts", "REDSHIFT_CLUSTER": "prod",
    "REDSHIFT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rs",
    "PIPEDRIVE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd",
    "FUNCTION_PREFIX": "sp", "DRY_RUN": "1",
}


def test_dry_run_prints_upload_under_the_sha_and_deploy_with_parameters(tmp_path, capsys):
    package = tmp_path / "bundle.zip"
    package.write_bytes(b"zip bytes")
    assert deploy.main({**ENV, "PACKAGE": str(package), "PATH": ""}) == 0  # no aws needed for a dry run
    out = capsys.readouterr().out
    key = f"step-patterns/lambdas-{hashlib.sha256(b'zip bytes').hexdigest()}.zip"
    assert f"aws s3 cp {package} s3://artifacts/{key}" in out
    assert f"CodeBucket=artifacts CodeKey={key} RedshiftClusterIdentifier=prod" in out
    assert "FunctionPrefix=sp" in out and "--capabilities CAPABILITY_IAM" in out
    assert "Database=" not in out  # unset optional settings keep the template's defaults


def test_missing_settings_are_named(tmp_path, capsys):
    env = {k: v for k, v in ENV.items() if k not in ("ARTIFACT_BUCKET", "PIPEDRIVE_SECRET_ARN")}
    assert deploy.main({**env, "PACKAGE": str(tmp_path / "none.zip")}) == 2
    assert "set ARTIFACT_BUCKET, PIPEDRIVE_SECRET_ARN" in capsys.readouterr().err


def test_a_missing_zip_points_at_make_package(tmp_path, capsys):
    assert deploy.main({**ENV, "PACKAGE": str(tmp_path / "none.zip")}) == 2
    assert "run `make package` first" in capsys.readouterr().err


def test_without_the_aws_cli_it_says_so(tmp_path, capsys):
    package = tmp_path / "bundle.zip"
    package.write_bytes(b"zip")
    env = {**ENV, "DRY_RUN": "", "PACKAGE": str(package)}
    original = deploy.shutil.which
    deploy.shutil.which = lambda name: None
    try:
        assert deploy.main(env) == 127
    finally:
        deploy.shutil.which = original
    assert "the AWS CLI (`aws`) is not on the PATH" in capsys.readouterr().err
