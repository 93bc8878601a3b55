"""Security: the Pipedrive token never leaves its secret; SQL values only travel as Data API parameters.

Real runs feed every scan: ``airflow dags test`` of the daily DAG with the right token, taken from
a ``pipedrive`` Airflow connection (``AIRFLOW_CONN_PIPEDRIVE_DEFAULT``; the operator keeps it in a
secret of its own and passes that ARN), through a Pipedrive that answers 5xx and resets
connections (retry paths), the same DAG as shipped (a secret ARN) on another day
whose secret holds a wrong token (HTTP 401), and an INLINE execution with the wrong token whose
failure (``ChunkSyncFailed`` carrying ``AuthenticationFailed``) reaches the execution history.
Then every place a secret could end up is read in full and searched: Step Functions executions
(input, output, every history event), S3 objects, the Airflow metadata DB (XCom, rendered
fields, every table) and log files, the Lambdas' CloudWatch logs, and the ``dags test`` output.
Each scan must also find canaries that belong there (an ARN, a lead id, the report), so it
cannot pass by reading nothing.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import uuid
import zlib
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from harness import SyncJob, crm_deals, day_leads, landing

from step_patterns_sandbox.airflow_runner import AirflowResult, AirflowRunner
from step_patterns.connections import owned_secret_name
from step_patterns_sandbox.cloud import PIPEDRIVE_TOKEN, airflow_environment
from step_patterns_sandbox.demo_data import seed_leads

pytestmark = pytest.mark.timeout(600)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAG_ID, TASK_ID = "redshift_to_pipedrive", "sync_leads"
GOOD_DAY, WRONG_TOKEN_DAY = "2026-11-21", "2026-11-22"  # seeded here; the daily task's files are removed after
PER_DAY = 30
_RUN = uuid.uuid4().hex[:8]
WRONG_TOKEN = f"wrong-pipedrive-token-{_RUN}"
# The cloud's own Redshift secret holds "sandbox", a word in every bucket and cluster name:
# the runs use a secret of their own whose password can only have come from there.
REDSHIFT_PASSWORD = f"redshift-password-{_RUN}"
SECRETS = (PIPEDRIVE_TOKEN, WRONG_TOKEN, REDSHIFT_PASSWORD)
PIPEDRIVE_CONN_ID = "pipedrive_default"
OWNED_SECRET = owned_secret_name("pipedrive", PIPEDRIVE_CONN_ID)  # where the operator keeps the connection's token


@dataclass
class Scan:
    """Texts searched for the secrets (and for canaries): how much was read, where each string was."""

    canaries: tuple[str, ...] = ()
    pieces: int = 0
    bytes: int = 0
    lines: int = 0
    hits: dict[str, list[str]] = field(default_factory=dict)

    def read(self, where: str, text: str | bytes | None) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.pieces += 1
        self.bytes += len(text.encode())
        self.lines += text.count("\n") + 1
        for needle in (*SECRETS, *self.canaries):
            if needle in text:
                self.hits.setdefault(needle, []).append(where)

    @property
    def leaks(self) -> dict[str, list[str]]:
        """Secret -> the first places it was found: ``{}`` is the only acceptable answer."""
        return {secret: self.hits[secret][:5] for secret in SECRETS if secret in self.hits}

    def places(self, canary: str) -> list[str]:
        return self.hits.get(canary, [])


@dataclass
class SecretRuns:
    """The runs every scan reads, and what they were given."""

    cloud: Any
    airflow: AirflowRunner
    started: datetime
    good: AirflowResult
    wrong_token: AirflowResult
    inline_wrong_token: Any  # harness Outcome
    wrong_secret_arn: str
    owned_secret_arn: str
    leads: dict[str, str]
    pipedrive: dict[str, int]  # what the Pipedrive sandbox answered over all runs (5xx, resets, 401s)

    @property
    def outputs(self) -> dict[str, str]:
        return {"dags test (right token)": self.good.output, "dags test (wrong token)": self.wrong_token.output}


def _objects(s3, bucket: str, prefix: str = ""):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _delete_prefixes(cloud, *prefixes: str) -> None:
    s3 = cloud.client("s3")
    for prefix in prefixes:
        for obj in list(_objects(s3, cloud.endpoints.bucket, prefix)):
            s3.delete_object(Bucket=cloud.endpoints.bucket, Key=obj["Key"])


# Other suites seed the same lead ids into the daily task: its sync state would call them unchanged.
DAILY_TASK_PREFIXES = (f"step-patterns/runs/{DAG_ID}/", f"step-patterns/sync-state/{DAG_ID}/")


def _logical_date(day: str) -> str:
    """A manual run at D covers the interval before D: the day after is the logical date."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _dags_using_the_connection(folder: Path) -> Path:
    """The example DAG as a user who keeps the token in an Airflow connection writes it: the secret
    ARN and the base URL give way to ``pipedrive_conn_id`` (the URL then comes from the connection)."""
    text = (PROJECT_ROOT / "dags" / f"{DAG_ID}.py").read_text()
    by_secret = ('        pipedrive_secret_arn="{{ %s.pipedrive_secret_arn }}" % SETTINGS,\n'
                 '        pipedrive_base_url="{{ %s.pipedrive_base_url }}" % SETTINGS,\n')
    assert text.count(by_secret) == 1, "the example DAG no longer passes the Pipedrive secret as expected"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{DAG_ID}.py").write_text(text.replace(by_secret, f'        pipedrive_conn_id="{PIPEDRIVE_CONN_ID}",\n'))
    return folder


@pytest.fixture(scope="module")
def runs(_session_cloud, airflow, tmp_path_factory):
    cloud = _session_cloud
    cloud.ensure_deployed()
    secrets = cloud.client("secretsmanager")
    wrong_secret_arn = secrets.create_secret(
        Name=f"step-patterns/reliability/wrong-pipedrive-{_RUN}", SecretString=json.dumps({"api_token": WRONG_TOKEN}),
    )["ARN"]
    redshift_secret_arn = secrets.create_secret(
        Name=f"step-patterns/reliability/redshift-{_RUN}",
        SecretString=json.dumps({"username": "sync", "password": REDSHIFT_PASSWORD}),
    )["ARN"]

    def dags_test(day: str, pipedrive_secret_arn: str | None) -> AirflowResult:
        """The deployment settings as the session's Airflow sees them, with this module's secrets;
        without a Pipedrive secret, the DAG takes the token from the ``pipedrive`` connection."""
        environment = airflow_environment(cloud.endpoints)
        settings = json.loads(environment["AIRFLOW_VAR_STEP_PATTERNS"])
        settings.update(redshift_secret_arn=redshift_secret_arn, pipedrive_secret_arn=pipedrive_secret_arn)
        environment["AIRFLOW_VAR_STEP_PATTERNS"] = json.dumps(settings)
        if pipedrive_secret_arn is None:
            environment["AIRFLOW__CORE__DAGS_FOLDER"] = str(_dags_using_the_connection(
                tmp_path_factory.mktemp("dags_with_connection")))
            environment[f"AIRFLOW_CONN_{PIPEDRIVE_CONN_ID.upper()}"] = json.dumps({
                "conn_type": "pipedrive", "host": cloud.endpoints.pipedrive_base_url, "password": PIPEDRIVE_TOKEN})
        return AirflowRunner(airflow.home, environment).dags_test(DAG_ID, _logical_date(day))

    seed_leads(cloud.warehouse, days=2, per_day=PER_DAY, last_day=WRONG_TOKEN_DAY)
    cloud.pipedrive.reset()
    _delete_prefixes(cloud, *DAILY_TASK_PREFIXES)
    before = cloud.pipedrive.settings
    inline = SyncJob(cloud, WRONG_TOKEN_DAY, rate="20/2s", map_mode="INLINE", pipedrive_secret_arn=wrong_secret_arn)
    started = datetime.now(timezone.utc)
    try:
        # Transient faults make the client retry and log: those paths must not carry the token either.
        cloud.pipedrive.configure(error_rate_5xx=0.1, reset_rate=0.05, seed=7)
        good = dags_test(GOOD_DAY, None)  # the token from the pipedrive connection
        cloud.pipedrive.configure(error_rate_5xx=before.error_rate_5xx, reset_rate=before.reset_rate, seed=before.seed)
        wrong_token = dags_test(WRONG_TOKEN_DAY, wrong_secret_arn)
        inline_wrong_token = inline.run()
        stats = cloud.pipedrive.stats()
        owned_secret_arn = secrets.describe_secret(SecretId=OWNED_SECRET)["ARN"]
        yield SecretRuns(cloud, airflow, started, good, wrong_token, inline_wrong_token, wrong_secret_arn,
                         owned_secret_arn,
                         day_leads(cloud, GOOD_DAY),
                         {name: stats[name] for name in ("requests", "responses_5xx", "resets", "responses_401")})
    finally:
        cloud.pipedrive.configure(error_rate_5xx=before.error_rate_5xx, reset_rate=before.reset_rate, seed=before.seed)
        cloud.pipedrive.reset()
        _delete_prefixes(cloud, *DAILY_TASK_PREFIXES, f"step-patterns/runs/reliability/{inline.name}/",
                         f"step-patterns/sync-state/reliability/{inline.name}/")
        for arn in (wrong_secret_arn, redshift_secret_arn, OWNED_SECRET):
            try:
                secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
            except secrets.exceptions.ResourceNotFoundException:  # the good run failed before creating it
                pass


# -- readers: each feeds one source, entirely, into a Scan and returns what it counted ------------

def scan_executions(cloud, since: datetime, scan: Scan) -> dict[str, int]:
    """Input, output, error, cause and every history event of each execution started since ``since``."""
    sfn = cloud.client("stepfunctions")
    executions = events = ends = 0
    for machines in sfn.get_paginator("list_state_machines").paginate():
        for machine in machines["stateMachines"]:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
                for execution in page["executions"]:
                    if execution["startDate"] < since:
                        continue
                    arn = execution["executionArn"]
                    described = sfn.describe_execution(executionArn=arn)
                    for part in ("input", "output", "error", "cause"):
                        scan.read(f"{arn} {part}", described.get(part))
                    for history in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                        for event in history["events"]:
                            scan.read(f"{arn} event {event['id']} {event['type']}", json.dumps(event, default=str))
                            events += 1
                            ends += event["type"] in _EXECUTION_ENDS
                    executions += 1
    return {"executions": executions, "history_events": events, "histories_read_to_the_end": ends}


_EXECUTION_ENDS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


def scan_bucket(cloud, scan: Scan) -> dict[str, int]:
    """Every object in the bucket: chunks, manifests, results, sync state, reports, failures."""
    s3, bucket = cloud.client("s3"), cloud.endpoints.bucket
    objects = 0
    for obj in _objects(s3, bucket):
        scan.read(f"s3://{bucket}/{obj['Key']}", s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        scan.read(f"s3://{bucket}/{obj['Key']} (key)", obj["Key"])
        objects += 1
    return {"s3_objects": objects}


def scan_lambda_logs(cloud, since: datetime, scan: Scan) -> dict[str, int]:
    """Every CloudWatch Logs event of every log group since ``since`` (the Lambdas' output)."""
    logs = cloud.client("logs")
    groups = events = 0
    start_ms = int(since.timestamp() * 1000)
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            name = group["logGroupName"]
            for found in logs.get_paginator("filter_log_events").paginate(logGroupName=name, startTime=start_ms):
                for event in found["events"]:
                    scan.read(f"{name} {event.get('logStreamName')}", event["message"])
                    events += 1
            groups += 1
    return {"log_groups": groups, "log_events": events}


def scan_airflow_home(home: Path, scan: Scan) -> dict[str, int]:
    """Every row of every table of the metadata DB (XCom, rendered fields, ...) and every other file
    under the Airflow home (task logs); compressed values are read uncompressed."""
    tables = rows = files = 0
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        if path.suffix == ".db":
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in names:
                    for row in db.execute(f'SELECT * FROM "{table}"'):
                        scan.read(f"{path.name}:{table}", "\t".join(_readable(value) for value in row))
                        rows += 1
                    tables += 1
        elif not path.name.endswith(("-wal", "-shm", "-journal")):  # read through the DB above
            scan.read(str(path.relative_to(home)), path.read_bytes())
            files += 1
    return {"db_tables": tables, "db_rows": rows, "files": files}


def _readable(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            value = zlib.decompress(value)
        except zlib.error:
            pass
        return value.decode("utf-8", errors="replace")
    return str(value)


# -- the runs the scans rely on ---------------------------------------------------------------------

def test_the_runs_went_through_success_retry_and_refusal_paths(runs, observe):
    """The right token (from the connection) synced every lead through 5xx and resets; the wrong
    one (a secret ARN) was refused (401)."""
    assert runs.good.succeeded, runs.good.output[-6000:]
    found = landing(runs.cloud, runs.leads)
    assert found.perfect, found
    assert f"Synced {PER_DAY} records: {PER_DAY} created" in runs.good.output
    assert runs.pipedrive["responses_5xx"] + runs.pipedrive["resets"] > 0, runs.pipedrive
    assert runs.pipedrive["responses_401"] >= 2, runs.pipedrive  # the wrong-token DAG run and the INLINE run
    failed = runs.inline_wrong_token
    assert (failed.status, failed.error) == ("FAILED", "ChunkSyncFailed"), failed
    assert "AuthenticationFailed" in failed.cause and "the API token was refused" in failed.cause
    observe(check="runs scanned for secrets", dag_runs=2, inline_runs=1, leads=PER_DAY, lost=len(found.lost),
            duplicates=len(found.duplicated), wrong_token_error=f"{failed.error} (AuthenticationFailed)",
            **runs.pipedrive)


def test_a_wrong_token_fails_the_daily_task_saying_why(runs):
    result = runs.wrong_token
    assert not result.succeeded or "state=failed" in result.output, result.output[-6000:]
    assert "AuthenticationFailed" in result.output, result.output[-6000:]


# -- the token never leaks ----------------------------------------------------------------------

def test_no_secret_in_step_functions_executions(runs, observe):
    scan = Scan(canaries=(runs.wrong_secret_arn, runs.owned_secret_arn, "AuthenticationFailed",
                          f"{GOOD_DAY} 00:00:00"))
    figures = scan_executions(runs.cloud, runs.started, scan)
    assert scan.leaks == {}
    # every run of this module (2 DAG runs, 1 INLINE run) was read to its last event, with its payloads
    assert figures["executions"] >= 3 and figures["histories_read_to_the_end"] == figures["executions"], figures
    assert any(" input" in where for where in scan.places(runs.wrong_secret_arn)), "secret ARN not seen in an input"
    # the connection's run passed the ARN of the operator's own secret, in place of the token
    assert any(" input" in where for where in scan.places(runs.owned_secret_arn)), "owned secret ARN not in an input"
    assert any(runs.inline_wrong_token.execution_arn in where for where in scan.places("AuthenticationFailed"))
    assert scan.places(f"{GOOD_DAY} 00:00:00"), "the good run's input was not read"
    observe(check="token in execution input/output/history", secrets_found=0, **figures, bytes=scan.bytes)


def test_no_secret_in_s3_objects(runs, observe):
    first_lead = min(runs.leads)
    scan = Scan(canaries=(first_lead, '"chunks_reported"'))
    figures = scan_bucket(runs.cloud, scan)
    assert scan.leaks == {}
    assert any(f"/{GOOD_DAY}/" in where for where in scan.places(first_lead)), "the good run's chunks were not read"
    assert any(where.endswith(f"/{GOOD_DAY}/report.json") for where in scan.places('"chunks_reported"'))
    observe(check="token in S3 objects", secrets_found=0, **figures, bytes=scan.bytes)


def test_no_secret_in_airflow_metadata_task_logs_or_output(runs, observe):
    run_prefix = f"runs/{DAG_ID}/{TASK_ID}/{GOOD_DAY}"
    scan = Scan(canaries=(run_prefix, '"chunks_reported"', f"Synced {PER_DAY} records"))
    figures = scan_airflow_home(runs.airflow.home, scan)
    for name, output in runs.outputs.items():  # `dags test` runs the task in process: its task log
        scan.read(name, output)
    assert scan.leaks == {}
    # the rendered fields (Airflow masks the secret ARNs there), the XCom report, the task's log lines
    assert any(where.endswith(":rendered_task_instance_fields") for where in scan.places(run_prefix))
    assert any(where.endswith(":xcom") for where in scan.places('"chunks_reported"'))
    assert "dags test (right token)" in scan.places(f"Synced {PER_DAY} records")
    observe(check="token in Airflow XCom, rendered fields, metadata DB, task logs, dags test output",
            secrets_found=0, **figures, dags_test_output_lines=sum(o.count("\n") for o in runs.outputs.values()),
            bytes=scan.bytes)


def test_no_secret_in_lambda_logs(runs, observe):
    scan = Scan(canaries=("AuthenticationFailed", "START RequestId"))
    figures = scan_lambda_logs(runs.cloud, runs.started, scan)
    assert scan.leaks == {}
    assert any("chunk-syncer" in where for where in scan.places("AuthenticationFailed")), "the refusal was not logged"
    assert figures["log_events"] >= 3, figures
    observe(check="token in Lambda logs (CloudWatch)", secrets_found=0, **figures, lines=scan.lines, bytes=scan.bytes)


def test_the_scanner_finds_a_planted_token():
    """The same reader that found nothing finds the token wherever it is planted (JSON, logs, bytes)."""
    scan = Scan()
    scan.read("clean", "x-api-token: <redacted>")
    scan.read("json", json.dumps({"target": {"api_token": PIPEDRIVE_TOKEN}}))
    scan.read("bytes", f"GET /deals?api_token={WRONG_TOKEN}\n".encode())
    assert scan.leaks == {PIPEDRIVE_TOKEN: ["json"], WRONG_TOKEN: ["bytes"]}


# -- SQL values only travel as Data API parameters ---------------------------------------------

def _dag_sql() -> str:
    spec = importlib.util.spec_from_file_location("redshift_to_pipedrive_dag", PROJECT_ROOT / "dags" / f"{DAG_ID}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.get_task(TASK_ID).sql


def _statements_since(cloud, since: datetime) -> list[dict]:
    """Every statement the Data API received since ``since``, with its QueryString and QueryParameters."""
    data_api = cloud.client("redshift-data")
    found, token = [], None
    while True:
        page = data_api.list_statements(Status="ALL", MaxResults=100, **({"NextToken": token} if token else {}))
        found += [s for s in page["Statements"] if s["CreatedAt"] >= since]
        token = page.get("NextToken")
        if not token:
            return found


def test_sql_values_travel_only_as_data_api_parameters(runs, observe):
    statements = _statements_since(runs.cloud, runs.started)
    dag_sql = _dag_sql()
    daily = [s for s in statements if s.get("StatementName") == f"{DAG_ID}.{TASK_ID}"]
    # One statement per DAG run: the DAG's own SQL text, the data interval only in the parameters.
    intervals = [[{"name": "start", "value": f"{day} 00:00:00"},
                  {"name": "end", "value": f"{_logical_date(day)} 00:00:00"}] for day in (GOOD_DAY, WRONG_TOKEN_DAY)]
    assert sorted(map(json.dumps, (s["QueryParameters"] for s in daily))) == sorted(map(json.dumps, intervals))
    assert all(s["QueryString"] == dag_sql for s in daily)
    assert ":start" in dag_sql and ":end" in dag_sql
    # No statement of any run carries one of its values in its SQL text.
    for statement in statements:
        for parameter in statement.get("QueryParameters") or []:
            assert parameter["value"] not in statement["QueryString"], statement
    for day in (GOOD_DAY, WRONG_TOKEN_DAY):
        assert not any(day in s["QueryString"] for s in statements)
    observe(check="SQL values only as Data API parameters", statements=len(statements), daily_statements=len(daily),
            parameters=sum(len(s.get("QueryParameters") or []) for s in statements), values_in_sql_text=0)


INJECTIONS = ("x'; DROP TABLE leads; --", "' OR '1'='1")
COMPANY_SQL = """
    SELECT lead_id, company, source, score
    FROM leads
    WHERE company = :company
    ORDER BY lead_id
"""


def test_sql_in_a_parameter_value_is_only_a_value(job, observe):
    """A value that would drop the table or match every row, were it pasted into the SQL, matches nothing."""
    leads = day_leads(job.cloud, job.day)
    lead_id, company = min(leads.items())
    job.sql = COMPANY_SQL
    job.parameters = {"company": company}
    control = job.run()
    assert control.status == "SUCCEEDED", control
    assert control.report["records"] == 1  # the parameter is live: a real company finds its lead
    since = datetime.now(timezone.utc)
    outcomes = []
    for injection in INJECTIONS:
        job.parameters = {"company": injection}
        outcomes.append(job.run())
    assert [(o.status, o.report["records"], o.report["failed"]) for o in outcomes] == [("SUCCEEDED", 0, 0)] * 2
    assert job.cloud.warehouse.execute("SELECT COUNT(*) FROM leads")[0][0] == len(leads)  # the table is intact
    received = _statements_since(job.cloud, since)
    assert sorted(s["QueryParameters"][0]["value"] for s in received) == sorted(INJECTIONS)
    assert all(s["QueryString"] == COMPANY_SQL for s in received)
    assert landing(job.cloud, {lead_id: company}).perfect
    assert list(crm_deals(job.cloud)) == [lead_id]  # the injections created nothing
    observe(check="SQL injection in a parameter value", injections=len(INJECTIONS), rows_matched=0,
            leads_after=len(leads), lost=0, duplicates=0)
