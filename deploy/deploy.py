"""``make deploy``: upload the bundle zip and deploy deploy/template.yaml with the AWS CLI.

Settings come from environment variables (required ones marked *):

    ARTIFACT_BUCKET*       S3 bucket for the zip (same region as the stack)
    REDSHIFT_CLUSTER*      provisioned cluster identifier
    REDSHIFT_SECRET_ARN*   Secrets Manager ARN of the Redshift credentials
    PIPEDRIVE_SECRET_ARN*  Secrets Manager ARN of the Pipedrive API token
    STACK_NAME             default step-patterns
    FUNCTION_PREFIX, DATABASE, PIPEDRIVE_BASE_URL, RUN_RETENTION_DAYS, LOG_RETENTION_DAYS,
    SECRETS_KMS_KEY_ARN    template parameters (template defaults when unset)
    AWS_REGION / AWS_PROFILE  as the AWS CLI reads them
    PACKAGE                the zip (default build/step-patterns-lambdas.zip, from `make package`)
    DRY_RUN=1              print the commands, run nothing

The zip goes to ``s3://$ARTIFACT_BUCKET/step-patterns/lambdas-<sha256>.zip``: a new build is
a new key, so CloudFormation sees the code change, and an old stack's key stays valid.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
REQUIRED = {
    "ARTIFACT_BUCKET": None,
    "REDSHIFT_CLUSTER": "RedshiftClusterIdentifier",
    "REDSHIFT_SECRET_ARN": "RedshiftSecretArn",
    "PIPEDRIVE_SECRET_ARN": "PipedriveSecretArn",
}
OPTIONAL = {
    "FUNCTION_PREFIX": "FunctionPrefix",
    "DATABASE": "Database",
    "PIPEDRIVE_BASE_URL": "PipedriveBaseUrl",
    "RUN_RETENTION_DAYS": "RunRetentionDays",
    "LOG_RETENTION_DAYS": "LogRetentionDays",
    "SECRETS_KMS_KEY_ARN": "SecretsKmsKeyArn",
}


class DeployError(RuntimeError):
    pass


def plan(env: dict[str, str], package: Path) -> list[list[str]]:
    """The AWS CLI commands that deploy ``package`` with the settings in ``env``."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise DeployError(f"set {', '.join(missing)} (see docs/deploy.md)")
    if not package.is_file():
        raise DeployError(f"{package}: no bundle zip; run `make package` first")
    digest = hashlib.sha256(package.read_bytes()).hexdigest()
    key = f"step-patterns/lambdas-{digest}.zip"
    stack = env.get("STACK_NAME") or "step-patterns"
    overrides = [f"CodeBucket={env['ARTIFACT_BUCKET']}", f"CodeKey={key}"]
    overrides += [f"{parameter}={env[name]}" for name, parameter in {**REQUIRED, **OPTIONAL}.items()
                  if parameter and env.get(name)]
    return [
        ["aws", "s3", "cp", str(package), f"s3://{env['ARTIFACT_BUCKET']}/{key}"],
        ["aws", "cloudformation", "deploy", "--stack-name", stack, "--template-file", str(TEMPLATE),
         "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset", "--parameter-overrides", *overrides],
        ["aws", "cloudformation", "describe-stacks", "--stack-name", stack,
         "--query", "Stacks[0].Outputs", "--output", "table"],
    ]


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    package = Path(env.get("PACKAGE") or ROOT / "build" / "step-patterns-lambdas.zip")
    try:
        commands = plan(env, package)
    except DeployError as error:
        print(f"make deploy: {error}", file=sys.stderr)
        return 2
    dry_run = env.get("DRY_RUN", "") not in ("", "0")
    print("make deploy will run:" if not dry_run else "make deploy (DRY_RUN: nothing is run):")
    for command in commands:
        print("  " + shlex.join(command))
    if dry_run:
        return 0
    if shutil.which("aws") is None:
        print("make deploy: the AWS CLI (`aws`) is not on the PATH; install it "
              "(https://docs.aws.amazon.com/cli/) or run with DRY_RUN=1 and run the commands yourself",
              file=sys.stderr)
        return 127
    for command in commands:
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(f"make deploy: `{shlex.join(command)}` failed ({done.returncode})", file=sys.stderr)
            return done.returncode
    print("Set the step_patterns Airflow Variable to the AirflowVariable output above.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
