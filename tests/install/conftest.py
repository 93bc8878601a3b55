"""Production installs of step-patterns: fresh venvs without dev dependencies.

``make airflow-package`` runs once per session; each resolution gets one venv (session-scoped,
shared by every check): ``lowest`` installs the wheel with its declared dependency ranges at
their lowest (``uv pip install --resolution lowest-direct``); ``locked`` installs what MWAA
would, the produced requirements.txt with its constraints.txt from uv.lock, after unpacking
plugins.zip where requirements.txt expects it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UV = PROJECT_ROOT / ".tools" / "bin" / "uv"
MWAA_PLUGINS = "/usr/local/airflow/plugins"  # where MWAA unpacks plugins.zip (Makefile's AIRFLOW_PLUGINS)
INSTALL_TIMEOUT = 900  # a cold uv cache downloads ~900 MB of Airflow


def uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the venv uses this interpreter's version, never a download
    return env


def run(args: list, *, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or uv_env(), capture_output=True, text=True,
                          timeout=timeout)


def checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@dataclass
class ProductionVenv:
    name: str
    path: Path
    workdir: Path  # an empty cwd: `python -c` must not find the checkout's folders

    def bin(self, program: str) -> Path:
        return self.path / "bin" / program

    def env(self, **extra: str) -> dict[str, str]:
        env = uv_env()
        env.update(VIRTUAL_ENV=str(self.path), PATH=f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                   AIRFLOW_HOME=str(self.workdir.parent / "airflow_home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
        env.update(extra)
        return env

    def run(self, program: str, *args, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
        return run([self.bin(program), *args], cwd=self.workdir, env=self.env(**extra_env), timeout=timeout)


@pytest.fixture(scope="session")
def airflow_package(tmp_path_factory) -> Path:
    """What ``make airflow-package`` produces, built into a temporary folder."""
    out = tmp_path_factory.mktemp("airflow_package")
    checked(run(["make", "-s", "airflow-package", f"AIRFLOW_DIST={out}", f"PYTHON={sys.executable}"],
                cwd=PROJECT_ROOT, timeout=600))
    return out


def declared_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines (extras-only ones left out)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    return [r for r in metadata.get_all("Requires-Dist") or () if "extra ==" not in r]


def create_venv(name: str, package: Path, root: Path) -> ProductionVenv:
    venv = ProductionVenv(name, root / "venv", root / "cwd")
    venv.workdir.mkdir()
    checked(run([UV, "venv", "--quiet", "--python", sys.executable, venv.path]))
    install = [UV, "pip", "install", "--quiet", "--python", venv.bin("python")]
    if name == "lowest":
        wheel = next(package.glob("step_patterns-*.whl"))
        # The declared ranges passed as direct requirements: lowest-direct applies to those.
        checked(run([*install, "--resolution", "lowest-direct", wheel, *declared_requirements(wheel)],
                    timeout=INSTALL_TIMEOUT))
    else:
        plugins = root / "plugins"  # MWAA's /usr/local/airflow/plugins
        with zipfile.ZipFile(package / "plugins.zip") as archive:
            archive.extractall(plugins)
        requirements = root / "requirements.txt"
        requirements.write_text((package / "requirements.txt").read_text().replace(MWAA_PLUGINS, str(plugins)))
        checked(run([*install, "-r", requirements], timeout=INSTALL_TIMEOUT))
    return venv


@pytest.fixture(scope="session")
def production_venvs(airflow_package, tmp_path_factory) -> dict[str, ProductionVenv]:
    """Each resolution's venv, created when a test first asks for it."""

    class Venvs(dict):
        def __missing__(self, name: str) -> ProductionVenv:
            self[name] = create_venv(name, airflow_package, tmp_path_factory.mktemp(f"venv_{name}"))
            return self[name]

    return Venvs()


@pytest.fixture(scope="session", params=["lowest", "locked"])
def production_venv(request, production_venvs) -> ProductionVenv:
    return production_venvs[request.param]


@pytest.fixture(scope="session")
def installed(production_venv) -> dict:
    """inspect_install.py's report from inside the venv (modules, DagBag, providers)."""
    result = checked(production_venv.run("python", Path(__file__).with_name("inspect_install.py"),
                                         PROJECT_ROOT / "dags"))
    line = next(line for line in result.stdout.splitlines() if line.startswith("INSPECT "))
    return json.loads(line.removeprefix("INSPECT "))


@pytest.fixture(scope="session")
def lowest_airflow(production_venvs, _session_cloud, tmp_path_factory):
    """An Airflow home migrated by the lowest venv's ``airflow``, pointed at the session's cloud.

    Only the lowest venv runs a DAG: `db migrate` + `dags test` take ~2 min on a busy 2-core
    machine, and the locked versions run the example DAGs in tests/e2e already.
    """
    from step_patterns_sandbox.airflow_runner import AirflowRunner
    from step_patterns_sandbox.cloud import airflow_environment

    production_venv = production_venvs["lowest"]
    root = tmp_path_factory.mktemp("airflow_lowest")
    (root / "plugins").mkdir()  # empty: operators come from the installed wheel, not the checkout
    environment = {**airflow_environment(_session_cloud.endpoints),
                   "PATH": production_venv.env()["PATH"], "VIRTUAL_ENV": str(production_venv.path)}
    runner = AirflowRunner(root / "home", environment, plugins_folder=root / "plugins",
                           airflow_bin=production_venv.bin("airflow"))
    runner.migrate()
    return runner

