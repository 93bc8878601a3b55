"""``step-patterns demo``: the product end to end on the local cloud, then everything stops.

Starts the local cloud (moto with Step Functions executions, the Lambda bundle, a DuckDB
warehouse, the Pipedrive sandbox with its rate limit, latency and search lag on), seeds the warehouse
with leads over several days, and runs the example DAGs with ``airflow dags test`` exactly
as a user would: the daily sync for one day, then again after some leads changed (and,
with ``--with-wait-loop``, the wait-loop DAG). Prints what each run did.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from step_lambdas.contract.defaults import RUNS_ROOT
from step_lambdas.contract.error_text import readable_cause
from step_lambdas.contract.results import read_segment_results

SYNC_DAG = "redshift_to_pipedrive"
RUNS_PREFIX = f"{RUNS_ROOT}redshift_to_pipedrive/sync_leads"
WAIT_LOOP_SQL = (
    "CREATE OR REPLACE TABLE leads_per_day AS "
    "SELECT CAST(created_at AS DATE) AS day, COUNT(*) AS leads, SUM(value) AS value "
    "FROM leads WHERE created_at < CAST(:day AS DATE) + INTERVAL 1 DAY GROUP BY 1 ORDER BY 1"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the example DAGs on the local cloud and report")
    parser.add_argument("--state-dir", type=Path, help="keep the local cloud's files here (default: a temp dir)")
    parser.add_argument("--day", default="2026-11-26", help="the day whose leads the daily sync moves")
    parser.add_argument("--days", type=int, default=8, help="days of leads in the warehouse")
    parser.add_argument("--leads-per-day", type=int, default=350)
    parser.add_argument("--with-wait-loop", action="store_true",
                        help="also run the wait-loop DAG (about 45 s more)")
    parser.add_argument("--rate", type=int, default=20, help="Pipedrive sandbox burst limit per 2 s")
    parser.set_defaults(func=run)


def run(args) -> int:
    from step_patterns_sandbox.airflow_runner import AirflowRunner
    from step_patterns_sandbox.cloud import CloudSettings, LocalCloud, airflow_environment
    from step_patterns_sandbox.demo_data import change_leads, seed_leads

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    started = time.monotonic()
    day = args.day
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    with tempfile.TemporaryDirectory() as scratch:
        state_dir = args.state_dir or Path(scratch) / "cloud"
        settings = CloudSettings(port=0, state_dir=state_dir, pipedrive={
            "latency_ms": 100, "jitter_ms": 30, "burst_limit": args.rate, "window_s": 2.0})
        with LocalCloud(settings) as cloud:
            _say(f"local cloud up: AWS {cloud.endpoints.aws_endpoint_url}, Pipedrive "
                 f"{cloud.endpoints.pipedrive_base_url} ({args.rate} requests / 2 s, 100 +- 30 ms, "
                 f"search {cloud.pipedrive.settings.search_lag_s:g} s behind the deals)")
            airflow = AirflowRunner(Path(scratch) / "airflow", airflow_environment(cloud.endpoints))
            # The metadata database migrates (about 20 s) while the warehouse is seeded.
            with ThreadPoolExecutor(1) as background:
                migrated = background.submit(airflow.migrate)
                seeded = seed_leads(cloud.warehouse, days=args.days, per_day=args.leads_per_day, last_day=next_day)
                _say(f"warehouse seeded: {seeded} leads over {args.days} days up to {next_day}; "
                     "migrating a throwaway Airflow metadata database")
                migrated.result()

            # A manual run at logical date D covers the last complete interval before D.
            _say(f"airflow dags test {SYNC_DAG} {next_day}   (data interval {day})")
            result = airflow.dags_test(SYNC_DAG, next_day)
            _report_sync(cloud, result, day, args.rate)

            changed = change_leads(cloud.warehouse, day=day, every=10)
            _say(f"{changed} of that day's leads changed in the warehouse; the same run again")
            result = airflow.dags_test(SYNC_DAG, next_day)
            _report_sync(cloud, result, day, args.rate)

            # `airflow dags test` runs no api-server, so there is no page to open here.
            _say("the runs' page, 'Pipedrive syncs', is served by an api-server at /pipedrive-syncs/ "
                 "(this demo runs none); to open it: python -m step_patterns_sandbox.airflow_services "
                 "--backfill, then Browse > Pipedrive syncs (docs/ui.md)")

            if args.with_wait_loop:
                _say(f"airflow dags test redshift_wait_loop {next_day}   (a statement Step Functions waits for)")
                result = airflow.dags_test("redshift_wait_loop", next_day, conf=json.dumps({"sql": WAIT_LOOP_SQL}))
                _report_wait_loop(cloud, result)
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


def _execution_lines(execution: dict | None, result) -> bool:
    print(f"    task        {'success' if result.succeeded else 'FAILED'}")
    if execution is None:
        print("    execution   none started\n" + result.output[-3000:])
        return False
    print(f"    execution   {execution['name']} -> {execution['status']}")
    if execution.get("error"):
        print(f"    error       {execution['error']}: {readable_cause(execution.get('cause'))}")
    return bool(execution.get("output"))


def _report_sync(cloud, result, day: str, rate: int) -> None:
    execution = _latest_execution(cloud, SYNC_DAG)
    if not _execution_lines(execution, result):
        return
    report = json.loads(execution["output"])
    stats = cloud.pipedrive.stats(include_times=True)
    syncing_s = _syncing_seconds(cloud, f"{RUNS_PREFIX}/{day}")
    run_times = [t for t in stats["request_times"]
                 if execution["startDate"].timestamp() <= t <= execution["stopDate"].timestamp()]
    print(f"    records     {report['records']}: {report['created']} created, {report['updated']} updated, "
          f"{report['unchanged']} unchanged, {report['failed']} failed")
    # The limit is N in any rolling 2 s, not N/2 every second: a short run may average more.
    print(f"    requests    {report['requests']} sent, {report['responses_429']} answered 429; "
          f"{report['requests'] / syncing_s if syncing_s else 0:.1f}/s while syncing; busiest 2 s window "
          f"{_busiest_window(run_times, 2.0)} of the limit's {rate}")
    print(f"    elapsed     {report['elapsed_s']:.1f} s for the whole execution ({syncing_s:.1f} s syncing)")
    print(f"    results     s3://{cloud.endpoints.bucket}/{RUNS_PREFIX}/{day}/ (report.json, failures: "
          f"{report['failures_location']})")
    print(f"    Pipedrive   {stats['deals']} deals, {stats['duplicate_external_ids']} duplicates")


def _busiest_window(times: list[float], window_s: float) -> int:
    """Most of ``times`` inside any half-open window [t, t + window_s)."""
    times, best, low = sorted(times), 0, 0
    for high, at in enumerate(times):
        while times[low] <= at - window_s:
            low += 1
        best = max(best, high - low + 1)
    return best


def _syncing_seconds(cloud, prefix: str) -> float:
    return sum(result.counts.elapsed_s
               for result in read_segment_results(cloud.client("s3"), cloud.endpoints.bucket, prefix))


def _report_wait_loop(cloud, result) -> None:
    execution = _latest_execution(cloud, "redshift_wait_loop")
    if not _execution_lines(execution, result):
        return
    summary = json.loads(execution["output"])
    print(f"    statement   {summary['status']} in {summary.get('duration_ms') or 0} ms")
    for row_day, leads in cloud.warehouse.execute("SELECT day, leads FROM leads_per_day ORDER BY day"):
        print(f"    leads_per_day  {row_day}  {leads}")
