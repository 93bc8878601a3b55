"""Shared fixtures: one local cloud per test session, and Airflow pointed at it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def _session_cloud(tmp_path_factory):
    """The whole local cloud (moto + Lambdas + DuckDB warehouse + Pipedrive sandbox)."""
    from step_patterns_sandbox.cloud import CloudSettings, LocalCloud

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    local_cloud = LocalCloud(CloudSettings(port=0, state_dir=tmp_path_factory.mktemp("cloud")))
    local_cloud.start()
    yield local_cloud
    local_cloud.stop()


@pytest.fixture
def cloud(_session_cloud):
    """The session's local cloud, redeployed if a unit test's ``mock_aws`` wiped moto's state."""
    _session_cloud.ensure_deployed()
    return _session_cloud


@pytest.fixture(scope="session")
def airflow(_session_cloud, tmp_path_factory):
    """An Airflow home whose metadata DB is migrated once, pointed at the session's cloud."""
    from step_patterns_sandbox.airflow_runner import AirflowRunner
    from step_patterns_sandbox.cloud import airflow_environment

    runner = AirflowRunner(tmp_path_factory.mktemp("airflow_home"), airflow_environment(_session_cloud.endpoints))
    runner.migrate()
    return runner


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("STEP_PATTERNS_ARTIFACTS", PROJECT_ROOT / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


SCHEDULER_TESTS = "tests/scheduler/"


def pytest_collection_modifyitems(items):
    """The scheduler tests first: under pytest-xdist (``make test`` runs two workers) they are
    one unit on one worker, the longest, so it starts while the other worker takes the rest."""
    items.sort(key=lambda item: not item.nodeid.startswith(SCHEDULER_TESTS))


def pytest_xdist_make_scheduler(config, log):
    """Every test its own unit but the scheduler tests, which share one set of Airflow services
    (a package fixture): one worker runs them all. Hand-written because xdist's loadgroup
    marks do not group under pytest 9 here (its renamed node ids are not what it schedules)."""
    from xdist.scheduler import LoadScopeScheduling

    class SchedulerTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "scheduler" if nodeid.startswith(SCHEDULER_TESTS) else nodeid

    return SchedulerTestsTogether(config, log)
