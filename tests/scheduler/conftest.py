"""Airflow's real services on PostgreSQL against the session's local cloud, one set for these tests."""

from __future__ import annotations

import pytest

from step_patterns_sandbox.redshift_data.pg_probe import require_postgres


@pytest.fixture(scope="package")
def airflow_services(request, tmp_path_factory):
    """api-server, scheduler, dag-processor and triggerer (LocalExecutor) with the example DAGs
    parsed, shared by the scheduler tests; stopped and their database dropped at the end."""
    from step_patterns_sandbox.airflow_services import AirflowServices
    from step_patterns_sandbox.cloud import airflow_environment

    pg_url = require_postgres()  # before the cloud starts: skipping should cost nothing
    cloud = request.getfixturevalue("_session_cloud")
    cloud.ensure_deployed()
    services = AirflowServices(
        tmp_path_factory.mktemp("airflow_services"), airflow_environment(cloud.endpoints), pg_url=pg_url
    )
    with services:
        services.api.wait_for_dags("redshift_to_pipedrive", "redshift_wait_loop")
        yield services


@pytest.fixture
def clean_slate(_session_cloud):
    """No deals, no sync state, no earlier runs' files of the daily DAG's task.

    Every test seeds the same lead ids, and the sync state remembers what an earlier test
    synced: without this, a test would find its leads "unchanged" and send nothing.
    """
    cloud = _session_cloud
    cloud.pipedrive.reset()
    s3 = cloud.client("s3")
    for prefix in ("step-patterns/runs/redshift_to_pipedrive/", "step-patterns/sync-state/redshift_to_pipedrive/"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=cloud.endpoints.bucket, Prefix=prefix)
        for key in [obj["Key"] for page in pages for obj in page.get("Contents", [])]:
            s3.delete_object(Bucket=cloud.endpoints.bucket, Key=key)
    return cloud
