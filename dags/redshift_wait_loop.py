"""Example: run a long Redshift statement through the wait-state loop, from Airflow.

Copy this DAG and change the SQL. Deployment settings (the Step Functions role, the
cluster, the database secret) come from the ``step_patterns`` Airflow Variable (JSON);
``python -m step_patterns_sandbox up`` prints one for the local cloud.

Trigger with ``{"sql": "..."}`` as the run's conf to run another statement.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from step_patterns.operators import WaitLoopOperator

SETTINGS = "var.json.step_patterns"

with DAG(
    dag_id="redshift_wait_loop",
    description="Rebuild a summary table with a long Redshift statement, waiting in Step Functions",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["step-patterns", "redshift"],
    params={"sql": None},
) as dag:
    WaitLoopOperator(
        task_id="rebuild_daily_summary",
        sql=(
            "{{ params.sql or 'CREATE TABLE IF NOT EXISTS daily_summary AS "
            "SELECT CAST(:day AS DATE) AS day, 1 AS runs' }}"
        ),
        parameters={"day": "{{ ds }}"},
        database="{{ %s.database }}" % SETTINGS,
        cluster_identifier="{{ %s.cluster_identifier }}" % SETTINGS,
        secret_arn="{{ %s.redshift_secret_arn }}" % SETTINGS,
        role_arn="{{ %s.states_role_arn }}" % SETTINGS,
        min_poll_seconds=1,
        max_poll_seconds=30,
        poll_interval=2,
    )
