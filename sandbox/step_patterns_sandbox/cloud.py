"""The local cloud: moto's server with real Step Functions executions, the Lambda bundle
deployed and run in worker subprocesses, the Redshift Data API on a real SQL engine, and
(optionally) the Pipedrive-compatible server.

Product code finds all of it only through endpoints and credentials, exactly as it finds
AWS and Pipedrive: :meth:`LocalCloud.start` returns :class:`Endpoints` and writes them to
``<state_dir>/endpoints.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from step_patterns_sandbox import aws_faults, lambda_runtime, sfn_data_limit, sfn_map_tolerance, sfn_stop
from step_lambdas.contract.defaults import function_name
from step_lambdas.manifest import FUNCTIONS
from step_patterns_sandbox.bundle import build_bundle, bundle_sha256

ACCOUNT_ID = "123456789012"  # moto's default account
SANDBOX_ACCESS_KEY = "sandbox"
PIPEDRIVE_TOKEN = "sandbox-pipedrive-token"

_ASSUME = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
}


@dataclass
class CloudSettings:
    host: str = "127.0.0.1"
    port: int = 0
    region: str = "us-east-1"
    state_dir: Path = Path(".sandbox")
    warehouse_url: str | None = None  # default: a DuckDB file in state_dir
    bucket: str = "step-patterns-sandbox"
    function_prefix: str = "step-patterns"
    cluster_identifier: str = "sandbox-cluster"
    database: str = "dev"
    with_pipedrive: bool = True
    pipedrive: dict = field(default_factory=dict)  # PipedriveSettings overrides

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.state_dir / 'warehouse.duckdb').resolve()}"


@dataclass
class Endpoints:
    aws_endpoint_url: str
    region: str
    bucket: str
    lambda_role_arn: str
    states_role_arn: str
    functions: dict[str, str]
    warehouse_url: str
    cluster_identifier: str
    database: str
    redshift_secret_arn: str
    pipedrive_base_url: str | None
    pipedrive_secret_arn: str | None

    def airflow_connection_uri(self) -> str:
        """``AIRFLOW_CONN_AWS_DEFAULT`` for this cloud (JSON form; credentials are the sandbox's)."""
        return json.dumps({
            "conn_type": "aws",
            "login": SANDBOX_ACCESS_KEY,
            "password": SANDBOX_ACCESS_KEY,
            "extra": {"region_name": self.region, "endpoint_url": self.aws_endpoint_url},
        })

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


class LocalCloud:
    def __init__(self, settings: CloudSettings | None = None):
        self.settings = settings or CloudSettings()
        self._server: ThreadedMotoServer | None = None
        self._warehouse = None
        self._pipedrive = None
        self.endpoints: Endpoints | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Endpoints:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        self._server = ThreadedMotoServer(ip_address=s.host, port=s.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        # moto's Step Functions interpreter calls Lambda and the SDK back on this port.
        os.environ["MOTO_PORT"] = str(port)
        sfn_stop.install()
        sfn_map_tolerance.install()  # moto ignores a DISTRIBUTED Map's tolerated failures; AWS fails the Map
        sfn_data_limit.install()  # the 256 KB quota's exact bound; States.ALL does not catch it
        aws_faults.install()
        endpoint = f"http://{host}:{port}"
        lambda_runtime.install(s.state_dir / "lambda-code", endpoint, s.region)
        self._warehouse = _install_warehouse(s.resolved_warehouse_url)
        pipedrive_url = None
        if s.with_pipedrive:
            self._pipedrive, pipedrive_url = _start_pipedrive(s)
        self.endpoints = self._deploy(endpoint, pipedrive_url)
        (s.state_dir / "endpoints.json").write_text(self.endpoints.to_json())
        return self.endpoints

    def stop(self) -> None:
        lambda_runtime.uninstall()
        if self._pipedrive is not None:
            self._pipedrive.stop()
            self._pipedrive = None
        if self._warehouse is not None:
            from step_patterns_sandbox import redshift_data

            redshift_data.uninstall()
            self._warehouse = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "LocalCloud":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def warehouse(self):
        """The SQL engine behind the Data API, for seeding and inspecting in tests."""
        return self._warehouse

    @property
    def pipedrive(self):
        return self._pipedrive

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoints.aws_endpoint_url,
            region_name=self.settings.region,
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SANDBOX_ACCESS_KEY,
        )

    def kill_lambda(self, key: str, *, after_s: float, error_type: str = "Sandbox.Timedout", times: int = 1) -> None:
        """Kill the next ``times`` invocations of bundle function ``key`` ``after_s`` seconds in."""
        lambda_runtime.inject_fault(
            function_name(key, self.settings.function_prefix),
            lambda_runtime.KillFault(after_s=after_s, error_type=error_type, times=times),
        )

    def crash_lambda_after_writes(self, key: str, *, writes: int, error_type: str = "Runtime.ExitError",
                                  times: int = 1) -> None:
        """Kill bundle function ``key`` as soon as the Pipedrive sandbox holds ``writes`` more
        deals than now: a crash at an exact point of a sync, whatever its timing.

        The kill lands within ~10 ms of the deal being committed, before the response can
        reach the caller if the sandbox answers slower than that. Each of the ``times`` kills
        takes the invocation running when the figure is reached; later ones find it reached
        and end the next invocations at their start.
        """
        deals = self.pipedrive.store.count  # the "deals" figure of stats(), cheap enough to poll
        target = deals() + writes
        lambda_runtime.inject_fault(
            function_name(key, self.settings.function_prefix),
            lambda_runtime.KillFault(when=lambda: deals() >= target, error_type=error_type, times=times),
        )

    def end_lambda_faults(self) -> None:
        lambda_runtime.clear_faults()

    def fail_aws(self, service: str, action: str, *, times: int, error_code: str = "ServiceUnavailable",
                 status: int = 503) -> None:
        """The next ``times`` calls of an AWS action answer an error (an outage, a throttle)."""
        aws_faults.fail_next(service, action, times, error_code, status)

    def end_aws_faults(self) -> None:
        aws_faults.clear()

    def ensure_deployed(self) -> None:
        """Deploy again if moto's state was wiped (leaving a ``mock_aws`` resets every backend
        in this process, the server's included)."""
        try:
            self.client("lambda").get_function(FunctionName=self.endpoints.functions["statement-start"])
        except self.client("lambda").exceptions.ResourceNotFoundException:
            self.endpoints = self._deploy(self.endpoints.aws_endpoint_url, self.endpoints.pipedrive_base_url)

    # -- deployment ------------------------------------------------------
    def _deploy(self, endpoint: str, pipedrive_url: str | None) -> Endpoints:
        s = self.settings
        self.endpoints = Endpoints(  # provisional, so self.client() works while deploying
            endpoint, s.region, s.bucket, "", "", {}, s.resolved_warehouse_url,
            s.cluster_identifier, s.database, "", pipedrive_url, None,
        )
        iam = self.client("iam")
        roles = {kind: _ensure_role(iam, f"{s.function_prefix}-{kind}", principal)
                 for kind, principal in _ASSUME.items()}
        functions = deploy_bundle(self.client("lambda"), roles["lambda"], s.function_prefix)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=s.bucket)
        secrets = self.client("secretsmanager")
        redshift_secret = _ensure_secret(
            secrets, f"{s.function_prefix}/redshift",
            json.dumps({"username": "sandbox", "password": "sandbox"}),
        )
        pipedrive_secret = None
        if pipedrive_url:
            pipedrive_secret = _ensure_secret(
                secrets, f"{s.function_prefix}/pipedrive", json.dumps({"api_token": PIPEDRIVE_TOKEN})
            )
        return Endpoints(
            aws_endpoint_url=endpoint,
            region=s.region,
            bucket=s.bucket,
            lambda_role_arn=roles["lambda"],
            states_role_arn=roles["states"],
            functions=functions,
            warehouse_url=s.resolved_warehouse_url,
            cluster_identifier=s.cluster_identifier,
            database=s.database,
            redshift_secret_arn=redshift_secret,
            pipedrive_base_url=pipedrive_url,
            pipedrive_secret_arn=pipedrive_secret,
        )


def deploy_bundle(lambda_client, role_arn: str, prefix: str) -> dict[str, str]:
    """Create or update every bundle function from a fresh zip; returns key -> function ARN."""
    code = build_bundle()
    sha = bundle_sha256(code)
    arns = {}
    for key, spec in FUNCTIONS.items():
        name = function_name(key, prefix)
        config = dict(
            Role=role_arn,
            Handler=spec.handler,
            Runtime="python3.11",
            Timeout=spec.timeout_s,
            MemorySize=spec.memory_mb,
            Description=spec.description,
        )
        try:
            current = lambda_client.get_function(FunctionName=name)["Configuration"]
        except lambda_client.exceptions.ResourceNotFoundException:
            arns[key] = lambda_client.create_function(
                FunctionName=name, Code={"ZipFile": code}, **config
            )["FunctionArn"]
            continue
        lambda_client.update_function_configuration(FunctionName=name, **config)
        if current["CodeSha256"] != sha:  # only new code makes new workers
            lambda_client.update_function_code(FunctionName=name, ZipFile=code)
        arns[key] = current["FunctionArn"]
    return arns


def _ensure_role(iam, name: str, principal: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": principal},
                           "Action": "sts:AssumeRole"}],
        }
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _ensure_secret(secrets, name: str, value: str) -> str:
    try:
        return secrets.create_secret(Name=name, SecretString=value)["ARN"]
    except secrets.exceptions.ResourceExistsException:
        return secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def _install_warehouse(url: str):
    from step_patterns_sandbox import redshift_data

    return redshift_data.install(url)


def _start_pipedrive(settings: CloudSettings):
    from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings

    options = {"tokens": (PIPEDRIVE_TOKEN,), "db_path": str(settings.state_dir / "pipedrive.sqlite3")}
    options.update(settings.pipedrive)
    server = PipedriveSandbox(PipedriveSettings(**options), host=settings.host, port=0)
    return server, server.start()


def airflow_environment(endpoints: Endpoints) -> dict[str, str]:
    """Environment variables that point an Airflow deployment at this cloud.

    The connection carries only the sandbox's fake keys; the example DAGs read the
    deployment's ARNs and names from the ``step_patterns`` Variable.
    """
    settings = {
        "states_role_arn": endpoints.states_role_arn,
        "bucket": endpoints.bucket,
        "cluster_identifier": endpoints.cluster_identifier,
        "database": endpoints.database,
        "redshift_secret_arn": endpoints.redshift_secret_arn,
        "pipedrive_base_url": endpoints.pipedrive_base_url,
        "pipedrive_secret_arn": endpoints.pipedrive_secret_arn,
    }
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": endpoints.airflow_connection_uri(),
        "AIRFLOW_VAR_STEP_PATTERNS": json.dumps(settings),
    }
