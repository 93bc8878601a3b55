"""Run by a production venv's own python (not by pytest): what that install holds, as JSON.

One process for every in-process check, because each Airflow import costs seconds:
every module of the installed wheel imported, the example DAGs parsed with DagBag, which
dev-only modules are findable, and what Airflow's ProvidersManager (the source of
``airflow providers list`` and the connection form) knows.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from importlib.metadata import distribution, version

DEV_ONLY = ("sandbox", "step_patterns_sandbox", "moto", "duckdb", "pytest", "hypothesis")
PINNED = ("apache-airflow", "apache-airflow-providers-amazon", "boto3", "requests")


def wheel_modules() -> list[str]:
    """Dotted names of the .py files the step-patterns distribution installed."""
    names = []
    for file in distribution("step-patterns").files or ():
        if file.suffix == ".py" and not str(file).startswith(("..", "/")):
            parts = list(file.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return sorted(names)


def import_errors(modules: list[str]) -> dict[str, str]:
    errors = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # report every failure, not only the first
            errors[name] = f"{type(error).__name__}: {error}"
    return errors


def dagbag(dags_folder: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder, known_pools={"default_pool"})  # no metadata DB here
    return {"dag_ids": sorted(bag.dag_ids), "import_errors": {k: v[-2000:] for k, v in bag.import_errors.items()}}


def providers() -> dict:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    return {"packages": sorted(manager.providers), "connection_types": sorted(manager.hooks)}


def main(dags_folder: str) -> None:
    modules = wheel_modules()
    report = {"versions": {name: version(name) for name in PINNED},
              "modules": modules, "import_errors": import_errors(modules),
              "findable_dev_modules": [name for name in DEV_ONLY if importlib.util.find_spec(name)]}
    for key, probe in (("dagbag", lambda: dagbag(dags_folder)), ("providers", providers)):
        try:
            report[key] = probe()
        except Exception:
            report[key] = {"error": traceback.format_exc()[-3000:]}
    print("INSPECT " + json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
