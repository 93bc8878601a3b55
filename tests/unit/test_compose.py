"""docker-compose.yml cannot run here (no Docker engine): check what it would run instead.

Every command is one the tests run, with arguments the real parsers accept (Airflow 3.3's CLI
parser, the sandbox's own argparse); the Airflow services read the environment the sandbox
writes (its ``airflow_environment`` keys) from the file the sandbox writes it to; every
``AIRFLOW__SECTION__KEY`` is an option Airflow knows.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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


def test_the_four_airflow_components_and_the_migration_run(compose):
    services = compose["services"]
    for name, component in AIRFLOW_SERVICES.items():
        assert _exec_argv(services[name])[:2] == ["airflow", component]
    assert _exec_argv(services["airflow-init"]) == ["airflow", "db", "migrate"]
    assert services["postgres"]["image"].startswith("postgres:")


def test_airflow_commands_parse_with_airflow_s_own_cli_parser(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        argv = _exec_argv(compose["services"][name])
        try:
            parser.parse_args(argv[1:])
        except SystemExit as error:  # argparse's way of refusing
            pytest.fail(f"{name}: `{shlex.join(argv)}` is not a valid Airflow 3.3 command ({error})")


def test_the_sandbox_command_parses_with_the_sandbox_s_parser(compose):
    from step_patterns_sandbox.__main__ import add_arguments

    argv = _exec_argv(compose["services"]["sandbox"])
    assert argv[:4] == ["python", "-m", "step_patterns_sandbox", "up"]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    args = parser.parse_args(argv[3:])
    assert args.port == 5055 and args.env_file is not None
    # each Airflow service sources the very file the sandbox writes
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert _env_file_sourced(compose["services"][name]) == str(args.env_file)


def test_airflow_gets_the_sandbox_s_environment_and_nothing_shadows_it(compose):
    from step_patterns_sandbox.cloud import Endpoints, airflow_environment

    sandbox_keys = set(airflow_environment(Endpoints(*(["x"] * 5), {}, *(["x"] * 6))))
    assert sandbox_keys == {"AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_VAR_STEP_PATTERNS"}
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        environment = compose["services"][name]["environment"]
        assert not sandbox_keys & set(environment), f"{name} hard-codes what the sandbox provides"
        # same network namespace: the sandbox's 127.0.0.1 endpoints are Airflow's too
        assert compose["services"][name]["network_mode"] == "service:sandbox"


def test_every_airflow_setting_is_an_option_airflow_knows(compose):
    from airflow.configuration import conf

    known = conf.configuration_description  # every documented option, with or without a default
    environment = compose["services"]["airflow-scheduler"]["environment"]
    for key in environment:
        if key.startswith("AIRFLOW__"):
            section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
            assert option in known.get(section, {}).get("options", {}), f"{key}: Airflow has no [{section}] {option}"
    assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/step-patterns/dags"


def test_the_metadata_database_url_has_an_installed_driver(compose):
    import sqlalchemy

    url = compose["services"]["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    sqlalchemy.engine.make_url(url).get_dialect().import_dbapi()  # raises if the driver is missing


def test_the_image_holds_what_the_services_point_at():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /opt/step-patterns" in dockerfile
    for directory in ("plugins", "lambdas", "sandbox", "dags"):
        assert f"COPY {directory} ./{directory}" in dockerfile
    assert "uv sync --frozen" in dockerfile  # installs exactly uv.lock
