"""Run Airflow commands (``airflow dags test``) against the local cloud, in a throwaway home.

The same commands a user runs; only the environment points Airflow at the sandbox: the
project's ``dags/`` and ``plugins/``, a SQLite metadata database migrated once, and the
connection and Variable that :func:`step_patterns_sandbox.cloud.airflow_environment` makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # sandbox/step_patterns_sandbox/ -> the checkout


@dataclass
class AirflowResult:
    returncode: int
    output: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


class AirflowRunner:
    """``plugins_folder``/``airflow_bin`` default to the checkout's plugins and this venv's
    ``airflow``; the install test passes an empty folder and another venv's binary."""

    def __init__(self, home: Path, environment: dict[str, str], plugins_folder: Path | None = None,
                 airflow_bin: Path | None = None):
        self.home = home
        self.environment = environment
        self.plugins_folder = plugins_folder or PROJECT_ROOT / "plugins"
        self.airflow_bin = airflow_bin

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **self.environment,
        }
        # The sandbox's port for boto3 belongs to the sandbox process, not to Airflow.
        env.pop("MOTO_PORT", None)
        return env

    def airflow(self, *args: str, timeout: float = 600) -> AirflowResult:
        airflow = self.airflow_bin or shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
        completed = subprocess.run(
            [airflow, *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        return AirflowResult(completed.returncode, completed.stdout + completed.stderr)

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        result = self.airflow("db", "migrate")
        if not result.succeeded:
            raise RuntimeError(f"airflow db migrate failed:\n{result.output[-4000:]}")

    def dags_test(self, dag_id: str, logical_date: str | None = None, conf: str | None = None,
                  timeout: float = 600) -> AirflowResult:
        args = ["dags", "test", dag_id]
        if logical_date:
            args.append(logical_date)
        if conf:
            args += ["--conf", conf]
        return self.airflow(*args, timeout=timeout)
