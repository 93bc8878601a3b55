"""Every DAG in ``dags/`` imports with no errors and no warnings, as the dag-processor loads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter with every warning shown: in this process the plugin's modules may
# already be imported by other tests, and their import-time warnings would go unseen.
_LOAD = """
import json, warnings
warnings.simplefilter("always")
from airflow.dag_processing.dagbag import DagBag
with warnings.catch_warnings(record=True) as outside:
    warnings.simplefilter("always")
    bag = DagBag(dag_folder=%r, known_pools={"default_pool"})
print("DAGBAG:" + json.dumps({
    "dags": {dag_id: sorted(dag.task_ids) for dag_id, dag in bag.dags.items()},
    "import_errors": bag.import_errors,
    "captured_warnings": {path: list(found) for path, found in bag.captured_warnings.items()},
    "other_warnings": [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in outside],
}))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("dagbag_home")),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    completed = subprocess.run(
        [sys.executable, "-c", _LOAD % str(PROJECT_ROOT / "dags")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("DAGBAG:")]
    assert completed.returncode == 0 and lines, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("DAGBAG:"))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag["import_errors"] == {}


def test_no_warnings_while_importing_the_dags(dagbag):
    assert dagbag["captured_warnings"] == {}
    assert dagbag["other_warnings"] == []


def test_the_example_dags_are_there_with_their_tasks(dagbag):
    assert "sync_leads" in dagbag["dags"]["redshift_to_pipedrive"]
    assert "rebuild_daily_summary" in dagbag["dags"]["redshift_wait_loop"]
    assert all(tasks for tasks in dagbag["dags"].values()), dagbag["dags"]
