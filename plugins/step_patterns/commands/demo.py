"""``step-patterns demo``: the product end to end on the local cloud, then everything stops.

Starts the local cloud (moto with Step Functions executions, the Lambda bundle, a DuckDB
warehouse, the Pipedrive sandbox), seeds the warehouse, and runs the example DAGs with
``airflow dags test`` exactly as a user would, printing what each run did.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from step_patterns.operators.base import readable_cause

WAIT_LOOP_SQL = (
    "CREATE OR REPLACE TABLE leads_per_day AS "
    "SELECT CAST(created_at AS DATE) AS day, COUNT(*) AS leads, SUM(value) AS value "
    "FROM leads WHERE created_at < CAST(:day AS DATE) + INTERVAL 1 DAY GROUP BY 1 ORDER BY 1"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the example DAGs on the local cloud and report")
    parser.add_argument("--state-dir", type=Path, help="keep the local cloud's files here (default: a temp dir)")
    parser.add_argument("--day", default="2026-11-27", help="logical date of the runs")
    parser.set_defaults(func=run)


def run(args) -> int:
    from sandbox.airflow_runner import AirflowRunner
    from sandbox.cloud import CloudSettings, LocalCloud, airflow_environment
    from sandbox.demo_data import seed_leads

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        state_dir = args.state_dir or Path(scratch) / "cloud"
        settings = CloudSettings(port=0, state_dir=state_dir,
                                 pipedrive={"latency_ms": 100, "jitter_ms": 30, "burst_limit": 20})
        with LocalCloud(settings) as cloud:
            _say(f"local cloud up: AWS {cloud.endpoints.aws_endpoint_url}, "
                 f"Pipedrive {cloud.endpoints.pipedrive_base_url}")
            seeded = seed_leads(cloud.warehouse, days=5, per_day=800, last_day=args.day)
            _say(f"warehouse seeded: {seeded} leads over 5 days up to {args.day}")
            airflow = AirflowRunner(Path(scratch) / "airflow", airflow_environment(cloud.endpoints))
            _say("migrating a throwaway Airflow metadata database ...")
            airflow.migrate()

            _say(f"airflow dags test redshift_wait_loop {args.day}  (summary table, long statement)")
            result = airflow.dags_test("redshift_wait_loop", args.day, conf=json.dumps({"sql": WAIT_LOOP_SQL}))
            _report_wait_loop(cloud, result, "redshift_wait_loop")
            rows = cloud.warehouse.execute("SELECT day, leads FROM leads_per_day ORDER BY day")
            for day, leads in rows:
                print(f"      leads_per_day  {day}  {leads}")

            _say("airflow dags test redshift_wait_loop (a statement that fails in Redshift)")
            result = airflow.dags_test(
                "redshift_wait_loop", "2026-11-26", conf=json.dumps({"sql": "SELECT * FROM no_such_table WHERE day = :day"})
            )
            _report_wait_loop(cloud, result, "redshift_wait_loop")
    _say(f"demo finished in {time.monotonic() - started:.0f} s; everything it started is stopped")
    return 0


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _latest_execution(cloud, name_part: str) -> dict | None:
    sfn = cloud.client("stepfunctions")
    executions = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        executions += sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    executions = [e for e in executions if name_part in e["name"]]
    if not executions:
        return None
    latest = max(executions, key=lambda e: e["startDate"])
    return sfn.describe_execution(executionArn=latest["executionArn"])


def _report_wait_loop(cloud, result, dag_id: str) -> None:
    execution = _latest_execution(cloud, dag_id)
    print(f"    task:      {'success' if result.succeeded else 'FAILED'}")
    if execution is None:
        print("    execution: none started\n" + result.output[-3000:])
        return
    print(f"    execution: {execution['name']} -> {execution['status']}")
    if execution.get("output"):
        summary = json.loads(execution["output"])
        print(f"    statement: {summary['status']}, {summary['result_rows']} rows, "
              f"{summary.get('duration_ms') or (summary.get('duration_ns') or 0) // 1_000_000} ms")
    if execution.get("error"):
        print(f"    error:     {execution['error']}: {readable_cause(execution.get('cause'))}")
