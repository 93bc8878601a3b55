"""Example: every day, sync that day's new leads from Redshift into Pipedrive Deals.

Copy this DAG and change the query and the field mapping. Each run reads its own data
interval (``:start`` <= created_at < ``:end``) and writes its chunks under a prefix of its
own, so ``airflow backfill create`` of past days syncs each day's leads exactly once.
Deployment settings (role, bucket, cluster, secrets, Pipedrive URL) come from the
``step_patterns`` Airflow Variable (JSON); ``python -m step_patterns_sandbox up`` prints one.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from step_patterns.operators import ChunkedIteratorOperator

SETTINGS = "var.json.step_patterns"
WINDOW = "%Y-%m-%d %H:%M:%S"

with DAG(
    dag_id="redshift_to_pipedrive",
    description="Daily: the day's new leads from Redshift into Pipedrive Deals, rate limited",
    # A data-interval timetable: each run covers [midnight, next midnight). Airflow 3's
    # "@daily" (CronTriggerTimetable) gives runs an empty interval, which would sync nothing.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 20, tz="UTC"),
    catchup=True,
    max_active_runs=1,  # one writer per Pipedrive token
    tags=["step-patterns", "redshift", "pipedrive"],
) as dag:
    ChunkedIteratorOperator(
        task_id="sync_leads",
        sql="""
            SELECT lead_id, company, value, currency, source, score
            FROM leads
            WHERE created_at >= CAST(:start AS TIMESTAMP) AND created_at < CAST(:end AS TIMESTAMP)
            ORDER BY lead_id
        """,
        parameters={
            "start": "{{ data_interval_start.strftime('%s') }}" % WINDOW,
            "end": "{{ data_interval_end.strftime('%s') }}" % WINDOW,
        },
        field_mapping={
            "lead_id": "external_id",
            "company": "title",
            "source": "Lead source",
            "score": "Score",
        },
        external_id_field="External ID",
        database="{{ %s.database }}" % SETTINGS,
        cluster_identifier="{{ %s.cluster_identifier }}" % SETTINGS,
        secret_arn="{{ %s.redshift_secret_arn }}" % SETTINGS,
        role_arn="{{ %s.states_role_arn }}" % SETTINGS,
        bucket="{{ %s.bucket }}" % SETTINGS,
        pipedrive_secret_arn="{{ %s.pipedrive_secret_arn }}" % SETTINGS,
        pipedrive_base_url="{{ %s.pipedrive_base_url }}" % SETTINGS,
        rate="20/2s",
        poll_interval=2,
    )
