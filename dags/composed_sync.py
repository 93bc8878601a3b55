"""Example: a long statement builds the day's leads table, then the chunked iterator syncs it.

The wait-state loop runs the heavy statement (longer than a Lambda may live) in Redshift and
waits for it in Step Functions; the chunked iterator then reads the small result. Both steps
use the day's data interval; both read deployment settings from the ``step_patterns``
Airflow Variable (JSON).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from step_patterns.operators import ChunkedIteratorOperator, WaitLoopOperator

SETTINGS = "var.json.step_patterns"
WINDOW = "%Y-%m-%d %H:%M:%S"
INTERVAL = {
    "start": "{{ data_interval_start.strftime('%s') }}" % WINDOW,
    "end": "{{ data_interval_end.strftime('%s') }}" % WINDOW,
}
WAREHOUSE = {
    "database": "{{ %s.database }}" % SETTINGS,
    "cluster_identifier": "{{ %s.cluster_identifier }}" % SETTINGS,
    "secret_arn": "{{ %s.redshift_secret_arn }}" % SETTINGS,
    "role_arn": "{{ %s.states_role_arn }}" % SETTINGS,
    "poll_interval": 2,
}

with DAG(
    dag_id="composed_sync",
    description="Build the day's qualified leads with a long statement, then sync them to Pipedrive",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 20, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["step-patterns", "redshift", "pipedrive"],
) as dag:
    build = WaitLoopOperator(
        task_id="build_qualified_leads",
        # One statement (the Data API runs one per call), idempotent: a rerun adds nothing twice.
        sql="""
            INSERT INTO qualified_leads
            SELECT l.lead_id, l.company, l.value, l.currency, l.source, l.score, l.created_at
            FROM leads l
            WHERE l.created_at >= CAST(:start AS TIMESTAMP) AND l.created_at < CAST(:end AS TIMESTAMP)
              AND l.score >= 50
              AND NOT EXISTS (SELECT 1 FROM qualified_leads q WHERE q.lead_id = l.lead_id)
        """,
        parameters=INTERVAL,
        min_poll_seconds=1,
        max_poll_seconds=30,
        **WAREHOUSE,
    )
    sync = ChunkedIteratorOperator(
        task_id="sync_qualified_leads",
        sql="""
            SELECT lead_id, company, value, currency, source, score
            FROM qualified_leads
            WHERE created_at >= CAST(:start AS TIMESTAMP) AND created_at < CAST(:end AS TIMESTAMP)
            ORDER BY lead_id
        """,
        parameters=INTERVAL,
        field_mapping={"lead_id": "external_id", "company": "title", "source": "Lead source", "score": "Score"},
        bucket="{{ %s.bucket }}" % SETTINGS,
        pipedrive_secret_arn="{{ %s.pipedrive_secret_arn }}" % SETTINGS,
        pipedrive_base_url="{{ %s.pipedrive_base_url }}" % SETTINGS,
        rate="20/2s",
        **WAREHOUSE,
    )
    build >> sync
