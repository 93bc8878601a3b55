"""docker-compose.yml cannot run here (no Docker engine): check what it would run instead.

Every command is one the tests run, with arguments the real parsers accept (Airflow 3.3's CLI
parser, the sandbox's and the seed's own argparse); the Airflow services read the environment
the sandbox writes from the file it writes it to; every ``AIRFLOW__SECTION__KEY`` is an option
Airflow knows; the keys every Airflow container must share are shared; logs and DAGs are
volumes; the Airflow image installs the production wheel and its locked runtime dependencies,
no dev package (its requirements are computed here by the very script the Dockerfile runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
ALL_AIRFLOW = (*AIRFLOW_SERVICES, "airflow-init")
# Per-container random values unless set: they must be the same in every Airflow container.
SHARED_KEYS = ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY")
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _interpolate(value):
    """Compose's ``${VAR:-default}`` as compose resolves it when VAR is unset."""
    if isinstance(value, str):
        return _DEFAULTED.sub(lambda match: match.group(2), value)
    if isinstance(value, dict):
        return {key: _interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item) for item in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${" not in _DEFAULTED.sub("", text), "a ${VAR} without a default: compose would leave it empty"
    return _interpolate(yaml.safe_load(text))


def _script(service: dict) -> str:
    command = service["command"]
    assert command[:2] == ["bash", "-c"], command
    return command[2]


def _exec_argv(service: dict) -> list[str]:
    """The argv the service finally execs (after sourcing the env file)."""
    script = _script(service)
    _, sep, tail = script.partition("exec ")
    assert sep, f"no exec in {script!r}"
    return shlex.split(tail)


def _env_file_sourced(service: dict) -> str:
    match = re.search(r"set -a && \. (\S+) && exec ", _script(service))
    assert match, f"does not source the sandbox's env file: {_script(service)!r}"
    return match.group(1)


def _sandbox_args(compose: dict) -> argparse.Namespace:
    from step_patterns_sandbox.__main__ import add_arguments

    argv = _exec_argv(compose["services"]["sandbox"])
    assert argv[:4] == ["python", "-m", "step_patterns_sandbox", "up"]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return parser.parse_args(argv[3:])


def _mounts(service: dict) -> dict[str, tuple[str, str]]:
    """target -> (source, mode) of a service's short-syntax volumes."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def _dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            current = line.split(" AS ")[-1].strip() if " AS " in line else line
            stages[current] = [line]
        else:
            stages[current].append(line)
    return stages


def test_the_four_airflow_components_and_the_migration_run(compose):
    services = compose["services"]
    for name, component in AIRFLOW_SERVICES.items():
        assert _exec_argv(services[name])[:2] == ["airflow", component]
    assert _exec_argv(services["airflow-init"]) == ["airflow", "db", "migrate"]
    assert services["postgres"]["image"].startswith("postgres:")


def test_airflow_commands_parse_with_airflow_s_own_cli_parser(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in ALL_AIRFLOW:
        argv = _exec_argv(compose["services"][name])
        try:
            parser.parse_args(argv[1:])
        except SystemExit as error:  # argparse's way of refusing
            pytest.fail(f"{name}: `{shlex.join(argv)}` is not a valid Airflow 3.3 command ({error})")


def test_the_sandbox_command_parses_with_the_sandbox_s_parser(compose):
    args = _sandbox_args(compose)
    assert args.port == 5055 and args.env_file is not None
    # each Airflow service sources the very file the sandbox writes
    for name in ALL_AIRFLOW:
        assert _env_file_sourced(compose["services"][name]) == str(args.env_file)


def test_the_seed_is_one_command_that_reaches_the_running_sandbox(compose):
    from step_patterns_sandbox.seed import build_parser

    seed, sandbox = compose["services"]["seed"], compose["services"]["sandbox"]
    argv = [*seed["entrypoint"], *seed["command"]]
    assert argv[:3] == ["python", "-m", "step_patterns_sandbox.seed"]
    assert importlib.util.find_spec(argv[2]) is not None
    args = build_parser().parse_args(argv[3:])
    # it reads the endpoints file the sandbox writes into its state dir, on the volume they share ...
    assert args.endpoints == _sandbox_args(compose).state_dir / "endpoints.json"
    shared = next(target for target, (source, _) in _mounts(sandbox).items() if source == "shared")
    assert _mounts(seed)[shared][0] == "shared" and args.endpoints.is_relative_to(shared)
    # ... and reaches its 127.0.0.1 endpoints; `docker compose run --rm seed` only: not started by `up`
    assert seed["network_mode"] == "service:sandbox" and seed["profiles"] == ["seed"]
    assert seed["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert seed["image"] == sandbox["image"]


def test_airflow_gets_the_sandbox_s_environment_and_nothing_shadows_it(compose):
    from step_patterns_sandbox.cloud import Endpoints, airflow_environment

    sandbox_keys = set(airflow_environment(Endpoints(*(["x"] * 5), {}, *(["x"] * 6))))
    assert sandbox_keys == {"AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_VAR_STEP_PATTERNS"}
    for name in ALL_AIRFLOW:
        environment = compose["services"][name]["environment"]
        assert not sandbox_keys & set(environment), f"{name} hard-codes what the sandbox provides"
        # same network namespace: the sandbox's 127.0.0.1 endpoints are Airflow's too
        assert compose["services"][name]["network_mode"] == "service:sandbox"


def test_every_airflow_setting_is_an_option_airflow_knows(compose):
    from airflow.configuration import conf

    known = conf.configuration_description  # every documented option, with or without a default
    for name in ALL_AIRFLOW:
        for key in compose["services"][name]["environment"]:
            if key.startswith("AIRFLOW__"):
                section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
                assert option in known.get(section, {}).get("options", {}), f"{name}: {key}: Airflow has no [{section}] {option}"


def test_every_airflow_container_shares_the_keys_airflow_would_otherwise_make_up(compose):
    from cryptography.fernet import Fernet

    environments = [compose["services"][name]["environment"] for name in ALL_AIRFLOW]
    for key in SHARED_KEYS:
        values = {environment.get(key) for environment in environments}
        assert len(values) == 1 and None not in values and "" not in values, f"{key} differs or is unset: {values}"
    Fernet(environments[0]["AIRFLOW__CORE__FERNET_KEY"])  # raises unless a valid Fernet key


def test_task_logs_are_one_volume_every_airflow_container_writes_and_reads(compose):
    for name in ALL_AIRFLOW:
        service = compose["services"][name]
        log_folder = service["environment"]["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
        source, mode = _mounts(service)[log_folder]
        assert source in compose["volumes"] and mode == "rw", f"{name}: logs not on a named volume"
    assert len({_mounts(compose["services"][name])[compose["services"][name]["environment"]
                ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]][0] for name in ALL_AIRFLOW}) == 1


def test_dags_are_mounted_read_only_from_the_checkout_not_copied(compose):
    for name in ALL_AIRFLOW:
        service = compose["services"][name]
        source, mode = _mounts(service)[service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]]
        assert (ROOT / source).resolve() == ROOT / "dags" and mode == "ro", name
    assert {path.name for path in (ROOT / "dags").glob("*.py")} >= {"redshift_to_pipedrive.py", "redshift_wait_loop.py"}
    assert not any("dags" in line for stage in _dockerfile_stages().values() for line in stage if line.startswith("COPY"))


def test_the_metadata_database_url_has_an_installed_driver(compose):
    import sqlalchemy

    url = compose["services"]["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    sqlalchemy.engine.make_url(url).get_dialect().import_dbapi()  # raises if the driver is missing


def test_the_services_run_the_image_made_for_them(compose):
    stages = _dockerfile_stages()
    targets = {name: service["build"]["target"] for name, service in compose["services"].items() if "build" in service}
    assert targets == {**dict.fromkeys(ALL_AIRFLOW, "airflow"), "sandbox": "sandbox", "seed": "sandbox"}
    assert {"airflow", "sandbox"} <= set(stages)
    # the Airflow image: a bare Python plus the virtualenv built in another stage (no uv, no sources)
    airflow = stages["airflow"]
    assert airflow[0].startswith("FROM python:") and [line for line in airflow if line.startswith(("COPY", "RUN", "ADD"))] \
        == ["COPY --from=airflow-build /opt/venv /opt/venv"]
    assert any("docker/airflow-requirements.sh" in line and line.startswith("RUN") for line in stages["airflow-build"])
    assert any(re.search(r"uv build --wheel .* && uv pip install .*--no-deps .*step_patterns-\*\.whl", line)
               for line in stages["airflow-build"])
    # the sandbox image: the dev distribution as locked, over the sources it builds the Lambda bundle from
    sandbox = stages["sandbox"]
    for directory in ("plugins", "lambdas", "sandbox"):
        assert f"COPY {directory} ./{directory}" in sandbox
    assert "RUN uv sync --frozen --no-dev --package step-patterns-sandbox" in sandbox


def test_the_airflow_image_requirements_are_locked_and_hold_no_dev_package(compose):
    from step_patterns_sandbox.bundle import find_uv

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev_parts = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())["project"]
    result = subprocess.run(["sh", str(ROOT / "docker" / "airflow-requirements.sh")], cwd=ROOT, check=False,
                            capture_output=True, text=True, env={"UV": find_uv(), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    pins = dict(line.split(" ;")[0].split("==") for line in result.stdout.splitlines())
    name = lambda requirement: re.split(r"[\[<>=~! ;]", requirement, maxsplit=1)[0].lower()  # noqa: E731
    locked: dict[str, set[str]] = {}  # a lock for several Pythons may hold more than one version
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        locked.setdefault(package["name"], set()).add(package.get("version"))
    # the production dependencies, at the locked versions
    for requirement in project["project"]["dependencies"]:
        assert pins[name(requirement)] in locked[name(requirement)]
    # the driver of the metadata database URL, though only the dev parts depend on it
    driver = compose["services"]["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert driver.startswith("postgresql+psycopg://") and pins["psycopg"] in locked["psycopg"]
    # nothing else of the dev group or the dev distribution
    dev = {name(requirement) for requirement in [*project["dependency-groups"]["dev"], *dev_parts["dependencies"]]}
    assert dev - {"step-patterns", "psycopg"} >= {"moto", "duckdb", "pytest", "playwright"}
    assert not (dev - {"psycopg"}) & set(pins), f"dev packages in the Airflow image: {sorted((dev - {'psycopg'}) & set(pins))}"
