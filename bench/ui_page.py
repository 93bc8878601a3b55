"""Benchmark: the Pipedrive syncs page for a task with 365 runs (a year of daily syncs).

Figures, not a test. A fresh Airflow metadata database (SQLite in a temp dir, or PostgreSQL
with ``--pg``) gets the example DAG ``redshift_to_pipedrive`` and 365 finished runs of its
``sync_leads`` task, each with the XComs a real run leaves (its S3 location and its report);
one run's objects (report, 40 segment results of 3 windows each, 500 failed records) are in a moto S3. The
api-server's app (``airflow.api_fastapi.app.create_app``, all-admins simple auth) answers
through Starlette's TestClient; the script prints each page's response time (median of 5,
after one warm-up request).

Usage: uv run python bench/ui_page.py [--runs 365] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_ID, TASK_ID, BUCKET = "redshift_to_pipedrive", "sync_leads", "bench-bucket"


def configure(home: Path, pg: str | None) -> None:
    """Airflow reads its configuration at import: set it before anything imports airflow."""
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": "bench-" * 12,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg or f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}),
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    })


def seed(runs: int) -> str:
    """The DAG and ``runs`` daily runs with their XComs; returns the newest run's id."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.db import initdb
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from step_patterns.ui import SYNC_LOCATION_KEY

    initdb()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "redshift_to_pipedrive.py"))
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    dag = SerializedDagModel.get_dag(DAG_ID)
    first = dag.start_date or datetime(2026, 11, 20, tzinfo=UTC)  # no task instances before the DAG starts
    run_id = ""
    with create_session() as session:
        for day in range(runs):
            start = first + timedelta(days=day)
            run_id = f"scheduled__{start.isoformat()}"
            dag.create_dagrun(
                run_id=run_id, logical_date=start, data_interval=(start, start + timedelta(days=1)),
                run_after=start + timedelta(days=1), run_type=DagRunType.SCHEDULED,
                triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.SUCCESS, session=session,
            )
            session.flush()  # the task instances the XComs belong to
            # as the Task Execution API stores them: JSON, not serialized text
            prefix = f"step-patterns/runs/{DAG_ID}/{TASK_ID}/{start.date()}"
            XComModel.set(SYNC_LOCATION_KEY, {"bucket": BUCKET, "prefix": prefix, "rate": "20/2s",
                                              "aws_conn_id": "aws_default", "region_name": "us-east-1"},
                          dag_id=DAG_ID, task_id=TASK_ID, run_id=run_id, serialize=False, session=session)
            XComModel.set("return_value", report(prefix), dag_id=DAG_ID, task_id=TASK_ID, run_id=run_id,
                          serialize=False, session=session)
        session.query(TaskInstance).filter(TaskInstance.dag_id == DAG_ID).update(
            {"state": TaskInstanceState.SUCCESS}, synchronize_session=False)
    return run_id


def report(prefix: str) -> dict:
    return {"records": 500, "created": 20, "updated": 30, "unchanged": 450, "failed": 0, "contract_errors": 0,
            "requests": 120, "responses_429": 0, "elapsed_s": 14.2, "requests_per_second": 8.45,
            "failures_location": f"s3://{BUCKET}/{prefix}/failures.jsonl"}


def put_objects(run_prefix: str) -> None:
    import boto3

    from step_lambdas.contract import layout
    from step_lambdas.contract.results import SegmentCounts, SegmentResult, write_segment_result

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=layout.report_key(run_prefix), Body=json.dumps(report(run_prefix)).encode())
    for chunk in range(40):
        write_segment_result(s3, BUCKET, run_prefix, SegmentResult(
            chunk=chunk, cursor_start=0, cursor_end=50,
            counts=SegmentCounts(records=50, created=5, requests=60, elapsed_s=6.1),
            windows=[[1_796_000_000.0 + chunk * 6 + step * 2, 20] for step in range(3)]))
    lines = "\n".join(json.dumps({"external_id": f"L-{i:07d}", "reasons": [f"title: expected non-empty string, got str \" \""],
                                  "source": "contract", "row": i}) for i in range(500))
    s3.put_object(Bucket=BUCKET, Key=layout.failures_key(run_prefix), Body=lines.encode())


def timed(client, path: str, repeat: int = 5) -> tuple[float, int]:
    client.get(path)  # warm-up: imports, connection pool, the auth manager's caches
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    return statistics.median(times), len(response.content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--pg", help="an empty PostgreSQL database's SQLAlchemy URL (default: SQLite)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        configure(Path(home), args.pg)
        from moto import mock_aws

        with mock_aws():
            began = time.perf_counter()
            newest = seed(args.runs)
            put_objects(f"step-patterns/runs/{DAG_ID}/{TASK_ID}/{newest.split('__')[1][:10]}")
            print(f"seeded {args.runs} runs in {time.perf_counter() - began:.1f} s "
                  f"({'PostgreSQL' if args.pg else 'SQLite'})")
            from fastapi.testclient import TestClient

            from airflow.api_fastapi.app import create_app
            from step_patterns.ui.links import run_page_path

            client = TestClient(create_app())
            for what, path in (
                ("list page (HTML, 50 of the runs)", "/pipedrive-syncs/"),
                ("list (JSON, last page)", f"/pipedrive-syncs/api/runs?page={(args.runs + 49) // 50}"),
                ("run page (40 segments, 500 failures, page 1)", run_page_path(DAG_ID, newest, TASK_ID)),
                ("run page, failures page 20", run_page_path(DAG_ID, newest, TASK_ID) + "?page=20"),
            ):
                seconds, size = timed(client, path)
                print(f"{what:48s} {seconds * 1000:7.1f} ms  ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
