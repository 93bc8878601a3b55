"""step-patterns as an Airflow user installs it: the wheel in a venv without dev dependencies,
at the lowest declared versions and at the locked ones (fixtures: tests/install/conftest.py)."""

from __future__ import annotations

import json

import pytest
from packaging.requirements import Requirement

from step_patterns_sandbox.cloud import PIPEDRIVE_TOKEN

pytestmark = pytest.mark.timeout(1800)

EXAMPLE_DAGS = ["composed_sync", "redshift_to_pipedrive", "redshift_wait_loop"]
# After the DAG's start_date, and a day no other test runs (the execution name derives from it).
LOGICAL_DATE = "2026-11-20"


def test_the_venv_holds_the_versions_it_stands_for(production_venv, installed, airflow_package):
    if production_venv.name == "lowest":  # the declared floors themselves
        expected = {"apache-airflow": "3.3.0", "apache-airflow-providers-amazon": "9.24.0"}
    else:  # what constraints.txt (uv.lock) pins
        pins = [Requirement(line) for line in (airflow_package / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.lstrip().startswith("#")]
        # The venv's interpreter is this one (uv venv --python sys.executable): its markers apply.
        pinned = {pin.name: str(pin.specifier).removeprefix("==") for pin in pins
                  if pin.marker is None or pin.marker.evaluate()}
        expected = {name: pinned[name] for name in installed["versions"]}
    assert {name: installed["versions"][name] for name in expected} == expected


def test_every_module_of_the_wheel_imports_and_no_dev_part_is_installed(production_venv, installed):
    assert installed["import_errors"] == {}
    assert {"step_patterns.operators", "step_patterns.cli", "step_lambdas.pipedrive.client"} <= set(installed["modules"])
    assert not [m for m in installed["modules"] if m.startswith("step_lambdas.handlers")]  # Lambda zip only
    assert installed["findable_dev_modules"] == []
    for module in ("sandbox", "step_patterns_sandbox"):
        result = production_venv.run("python", "-c", f"import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, result.stderr


def test_example_dags_parse(installed):
    assert installed["dagbag"].get("import_errors") == {}, installed["dagbag"]
    assert installed["dagbag"]["dag_ids"] == EXAMPLE_DAGS


def test_cli_answers_help_render_and_sync_dry_run(production_venv, cloud, tmp_path):
    help_text = production_venv.run("step-patterns", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "render" in help_text.stdout and "sync" in help_text.stdout

    rendered = production_venv.run("step-patterns", "render", "wait-loop")
    assert rendered.returncode == 0, rendered.stderr
    assert "StartAt" in json.loads(rendered.stdout)

    sandbox = production_venv.run("step-patterns", "sandbox")
    assert sandbox.returncode == 2 and "pip install ./sandbox" in sandbox.stderr
    assert len(sandbox.stderr.strip().splitlines()) == 1

    records = tmp_path / "deals.jsonl"
    records.write_text("".join(json.dumps({"external_id": f"INSTALL-{production_venv.name}-{i}", "title": f"Deal {i}"})
                               + "\n" for i in range(2)))
    planned = production_venv.run("step-patterns", "sync", records, "--base-url", cloud.endpoints.pipedrive_base_url,
                                  "--state", tmp_path / "state.jsonl", "--dry-run", PIPEDRIVE_API_TOKEN=PIPEDRIVE_TOKEN)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["plan"] == {"create": 2, "update": 0, "unchanged": 0, "failed": 0}


def test_wait_loop_dag_runs_at_the_lowest_versions_against_the_local_cloud(lowest_airflow, cloud):
    result = lowest_airflow.dags_test("redshift_wait_loop", LOGICAL_DATE,
                                      conf=json.dumps({"sql": "SELECT CAST(:day AS DATE) AS day"}))
    assert result.succeeded, result.output[-6000:]
    assert "Execution arn:aws:states" in result.output and "succeeded" in result.output
