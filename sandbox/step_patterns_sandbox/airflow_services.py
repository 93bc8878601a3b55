"""Airflow's real services (api-server, scheduler, dag-processor, triggerer) against the local cloud.

What ``airflow dags test`` cannot show needs these: backfills run by the scheduler, deferred
tasks waiting in the triggerer without a worker slot, task instances marked failed from the
API, the UI and its extra links. :class:`AirflowServices` runs them as subprocesses on a fresh
PostgreSQL metadata database (created on ``STEP_PATTERNS_PG_URL``'s server, dropped at the
end) with the LocalExecutor, the project's ``dags/`` and ``plugins/`` and the sandbox's
connection and Variable; :class:`AirflowApi` is a small client of Airflow 3's public REST API.

    with AirflowServices(home, airflow_environment(cloud.endpoints)) as airflow:
        airflow.api.wait_for_dags("redshift_to_pipedrive")
        airflow.api.unpause("redshift_to_pipedrive")
        airflow.cli("backfill", "create", "--dag-id", "redshift_to_pipedrive", ...)

Settings are chosen for tests: the scheduler creates no runs from schedules
(``use_job_schedule=False``: only backfills and triggered runs run, so a catch-up DAG does not
start syncing every day since its start date when unpaused), short parsing intervals, and the
simple auth manager with every user an admin (or one known admin user and password).
Everything binds to 127.0.0.1; service logs go to ``<home>/service-logs/<service>.log``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from step_patterns_sandbox.airflow_runner import AirflowResult, AirflowRunner

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# api-server last: workers finishing their tasks still talk to its Execution API.
_STOP_ORDER = ("scheduler", "triggerer", "dag-processor", "api-server")
_HEALTH_COMPONENTS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

T = TypeVar("T")


class AirflowServiceError(RuntimeError):
    """A service did not start, died, or a wait ran out; the message carries its log's tail."""


class AirflowServices:
    """Start Airflow's services on a fresh PostgreSQL database; a context manager.

    :param home: a directory of this run's own (``AIRFLOW_HOME``, task logs, service logs).
    :param environment: what points Airflow at the cloud (``step_patterns_sandbox.cloud.airflow_environment``).
    :param pg_url: a PostgreSQL server URL (libpq form); a database ``airflow_<random>`` is
        created there and dropped by :meth:`stop`. Default: ``STEP_PATTERNS_PG_URL``.
    :param all_admins: every visitor of the UI and API is an admin (no login). When False,
        one user ``admin`` with the password in :attr:`password` (generated) exists.
    :param parallelism: task slots of the LocalExecutor (``[core] parallelism``).
    :param use_job_schedule: let the scheduler create runs from DAG schedules (off by default).
    :param config: more ``AIRFLOW__SECTION__KEY`` variables, applied last.
    :param start_timeout: seconds :meth:`start` waits for every service to report healthy.
    """

    def __init__(
        self,
        home: Path,
        environment: Mapping[str, str],
        *,
        pg_url: str | None = None,
        all_admins: bool = True,
        parallelism: int = 4,
        use_job_schedule: bool = False,
        config: Mapping[str, str] | None = None,
        start_timeout: float = 180.0,
    ):
        self.home = Path(home)
        self.pg_url = pg_url or os.environ.get("STEP_PATTERNS_PG_URL") or DEFAULT_PG_URL
        self.database = f"airflow_{secrets.token_hex(6)}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username = "admin"
        self.password = None if all_admins else secrets.token_urlsafe(12)
        self.log_dir = self.home / "service-logs"
        self.start_timeout = start_timeout
        self._database_created = False
        self._processes: dict[str, subprocess.Popen] = {}
        self._log_files: dict[str, Any] = {}
        self.api: AirflowApi | None = None
        self.runner = AirflowRunner(self.home, {
            **environment,
            **self._airflow_config(all_admins, parallelism, use_job_schedule),
            **(config or {}),
        })

    # -- configuration ---------------------------------------------------
    def _airflow_config(self, all_admins: bool, parallelism: int, use_job_schedule: bool) -> dict[str, str]:
        config = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(self.pg_url, self.database),
            # psycopg 3 is async too; Airflow would otherwise derive asyncpg, which is not installed.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": sqlalchemy_url(self.pg_url, self.database),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # Every process signs and checks the same tokens (a random one per process would not).
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(all_admins),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(use_job_schedule),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # A worker notices its task process has exited only when its select() wakes, at most
            # this often (default 5 s). Until then the scheduler has not seen the defer-exit; a
            # trigger that fires sooner meets Airflow 3.3.2's stale-success race (the resumed task
            # is failed as "state changed externally": apache/airflow#67287, fixed after 3.3.2).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "15",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
        }
        if not all_admins:
            passwords = self.home / "simple_auth_manager_passwords.json"
            config["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = f"{self.username}:admin"
            config["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
        return config

    def env(self) -> dict[str, str]:
        return self.runner.env()

    # -- lifecycle -------------------------------------------------------
    def start(self) -> AirflowServices:
        """Create the database, migrate it, start every service and wait until all are healthy."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self.password:
                (self.home / "simple_auth_manager_passwords.json").write_text(
                    json.dumps({self.username: self.password})
                )
            _create_database(self.pg_url, self.database)
            self._database_created = True
            self.runner.migrate()
            for service in SERVICES:
                self._spawn(service)
            self.api = AirflowApi(self.url, self.username, self.password)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, service: str) -> None:
        args = [_airflow_executable(), service]
        if service == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        elif service in ("scheduler", "triggerer"):
            args.append("--skip-serve-logs")  # logs are read from the shared folder; no extra port
        log = open(self.log_dir / f"{service}.log", "ab")  # noqa: SIM115 (closed in stop)
        self._log_files[service] = log
        # A session of its own, so stop() reaches the workers each service forks.
        self._processes[service] = subprocess.Popen(
            args, env=self.env(), cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_healthy(self) -> None:
        def healthy() -> dict | None:
            self.check_alive()
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            except (requests.RequestException, ValueError):
                return None
            statuses = [health.get("metadatabase", {}).get("status")]
            statuses += [health.get(key, {}).get("status") for key in _HEALTH_COMPONENTS.values()]
            return health if all(status == "healthy" for status in statuses) else None

        wait_for(healthy, self.start_timeout, "Airflow services healthy", on_timeout=self.describe)

    def check_alive(self) -> None:
        """Raise with the log's tail if a service has exited."""
        for service, process in self._processes.items():
            if process.poll() is not None:
                raise AirflowServiceError(
                    f"airflow {service} exited with code {process.returncode}:\n{self.log_tail(service)}"
                )

    def stop(self) -> None:
        """SIGTERM every service's process group, SIGKILL what is left, then drop the database."""
        for service in _STOP_ORDER:
            process = self._processes.get(service)
            if process is not None and process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for service in _STOP_ORDER:
            process = self._processes.pop(service, None)
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # the group's leftovers, even if the leader exited
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for log in self._log_files.values():
            log.close()
        self._log_files.clear()
        if self.api is not None:
            self.api.close()
        if self._database_created:
            _drop_database(self.pg_url, self.database)
            self._database_created = False

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        """Signal ``service``'s process group (SIGKILL: a crash, nothing cleaned up) and reap it.

        Its workers and subprocesses go with it; the service stays down until :meth:`restart`.
        """
        process = self._processes.pop(service)
        _signal_group(process, sig)
        process.wait(timeout=30)
        _signal_group(process, signal.SIGKILL)  # what a SIGTERM'd service left behind
        self._log_files.pop(service).close()

    def restart(self, service: str, sig: int = signal.SIGKILL) -> None:
        """:meth:`kill` ``service`` and start a new one; its log goes on in the same file."""
        self.kill(service, sig)
        self._spawn(service)

    def __enter__(self) -> AirflowServices:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- use -------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> AirflowResult:
        """An ``airflow`` command against this deployment (e.g. ``backfill create ...``)."""
        return self.runner.airflow(*args, timeout=timeout)

    def log_tail(self, service: str, chars: int = 4000) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def describe(self) -> str:
        """Every service's log tail: what a failed wait shows."""
        return "\n".join(f"--- {service} ({self.log_dir / (service + '.log')}):\n{self.log_tail(service, 2500)}"
                         for service in SERVICES)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log file as the worker wrote it (JSON lines in Airflow 3)."""
        root = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        path = root / f"attempt={try_number}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class AirflowApi:
    """A client of Airflow 3's public REST API (``/api/v2``), on a JWT from the auth endpoint."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None, timeout: float = 30):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()
        self._token: str | None = None

    def close(self) -> None:
        self.session.close()

    # -- plumbing --------------------------------------------------------
    def token(self) -> str:
        """A JWT: with no password, from all-admins mode's ``GET /auth/token``."""
        if self._token is None:
            if self.password:
                response = self.session.post(
                    f"{self.url}/auth/token", json={"username": self.username, "password": self.password},
                    timeout=self.timeout,
                )
            else:
                response = self.session.get(f"{self.url}/auth/token", timeout=self.timeout)
            _raise_for_status(response)
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> Any:
        response = self.session.request(
            method, f"{self.url}/api/v2/{path.lstrip('/')}",
            headers={"Authorization": f"Bearer {self.token()}"}, timeout=self.timeout, **kwargs,
        )
        _raise_for_status(response)
        return response.json() if response.content else None

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params or None)

    # -- DAGs and runs ---------------------------------------------------
    def dags(self) -> list[dict]:
        return self.get("dags", limit=1000)["dags"]

    def import_errors(self) -> list[dict]:
        return self.get("importErrors", limit=1000)["import_errors"]

    def wait_for_dags(self, *dag_ids: str, timeout: float = 120) -> list[dict]:
        """Wait until the dag-processor has parsed ``dag_ids``; fail early on an import error."""
        def parsed() -> list[dict] | None:
            errors = self.import_errors()
            if errors:
                raise AirflowServiceError(f"DAG import errors: {json.dumps(errors, indent=1)[:4000]}")
            dags = {d["dag_id"]: d for d in self.dags()}
            return [dags[d] for d in dag_ids] if all(d in dags for d in dag_ids) else None

        return wait_for(parsed, timeout, f"DAGs {', '.join(dag_ids)} parsed")

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"dags/{_q(dag_id)}", json={"is_paused": paused})

    def unpause(self, dag_id: str) -> dict:
        return self.set_paused(dag_id, False)

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict | None = None,
                run_id: str | None = None) -> dict:
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"dags/{_q(dag_id)}/dagRuns", json=body)

    def dag_runs(self, dag_id: str, **params) -> list[dict]:
        return self.get(f"dags/{_q(dag_id)}/dagRuns", limit=1000, order_by="logical_date", **params)["dag_runs"]

    def backfills(self, dag_id: str) -> list[dict]:
        return self.get("backfills", dag_id=dag_id)["backfills"]

    # -- task instances --------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str = "~", **params) -> list[dict]:
        """Task instances of one run, or of every run with ``run_id="~"``."""
        return self.get(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances", limit=1000,
                        **params)["task_instances"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.get(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}")

    def set_task_instance_state(self, dag_id: str, run_id: str, task_id: str, state: str,
                                note: str | None = None) -> Any:
        """What "Mark failed/success" in the UI does (``PATCH`` the task instance's ``new_state``)."""
        body: dict[str, Any] = {"new_state": state}
        if note:
            body["note"] = note
        return self.request("PATCH", f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}",
                            json=body)

    def mark_failed(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return self.set_task_instance_state(dag_id, run_id, task_id, "failed")

    def clear_task_instances(self, dag_id: str, run_id: str, task_ids: Iterable[str]) -> Any:
        """What "Clear" in the UI does: the tasks run again (a new try)."""
        return self.request("POST", f"dags/{_q(dag_id)}/clearTaskInstances", json={
            "dry_run": False, "dag_run_id": run_id, "task_ids": list(task_ids), "only_failed": False,
            "reset_dag_runs": True,
        })

    def extra_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        """Extra link name -> URL (None when the link was not persisted)."""
        return self.get(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/links")["extra_links"]

    def wait_for_task_state(self, dag_id: str, run_id: str, task_id: str, states: Iterable[str],
                            timeout: float = 120, poll: float = 0.5) -> dict:
        """The task instance once its state is one of ``states`` (e.g. ``{"deferred"}``)."""
        wanted = set(states)
        seen: list[str | None] = []

        def reached() -> dict | None:
            ti = self.task_instance(dag_id, run_id, task_id)
            if not seen or seen[-1] != ti["state"]:
                seen.append(ti["state"])
            return ti if ti["state"] in wanted else None

        return wait_for(reached, timeout, f"{dag_id}.{task_id} in {run_id} to be {sorted(wanted)}",
                        poll=poll, on_timeout=lambda: f"states seen: {seen}")

    def wait_for_runs(self, dag_id: str, run_ids: Iterable[str] | None = None, timeout: float = 180,
                      states: Iterable[str] = ("success", "failed")) -> list[dict]:
        """Runs of ``dag_id`` (all, or ``run_ids``) once every one is in a final state."""
        wanted, final = set(run_ids or ()), set(states)

        def finished() -> list[dict] | None:
            runs = [r for r in self.dag_runs(dag_id) if not wanted or r["dag_run_id"] in wanted]
            done = runs and all(r["state"] in final for r in runs) and (not wanted or len(runs) == len(wanted))
            return runs if done else None

        return wait_for(finished, timeout, f"runs of {dag_id} to finish",
                        on_timeout=lambda: json.dumps([(r["dag_run_id"], r["state"]) for r in self.dag_runs(dag_id)]))

    # -- pools -----------------------------------------------------------
    def pools(self) -> list[dict]:
        return self.get("pools", limit=1000)["pools"]

    def pool(self, name: str = "default_pool") -> dict:
        """Slots of a pool: ``slots``, ``running_slots``, ``queued_slots``, ``deferred_slots``,
        ``occupied_slots``, ``open_slots``, ``include_deferred``."""
        return self.get(f"pools/{_q(name)}")


# -- helpers ---------------------------------------------------------------
def wait_for(check: Callable[[], T | None], timeout: float, what: str, poll: float = 0.5,
             on_timeout: Callable[[], str] | None = None) -> T:
    """Call ``check`` until it returns something truthy; raise naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise AirflowServiceError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(poll)


def free_port() -> int:
    """A port free on 127.0.0.1 now (the API server must be told its port before it binds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sqlalchemy_url(pg_url: str, database: str) -> str:
    """``pg_url`` (libpq URL) pointed at ``database``, with the psycopg 3 driver SQLAlchemy needs."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def _server_connection(pg_url: str):
    import psycopg

    return psycopg.connect(pg_url, autocommit=True, connect_timeout=5)


def _create_database(pg_url: str, database: str) -> None:
    from psycopg import sql

    with _server_connection(pg_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _drop_database(pg_url: str, database: str) -> None:
    from psycopg import sql

    with _server_connection(pg_url) as conn:
        # FORCE: a killed service's connection may linger for a moment.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _airflow_executable() -> str:
    # As AirflowRunner finds it: the venv's ``airflow`` next to this interpreter.
    return shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group we created with start_new_session
    except ProcessLookupError:
        pass


def _q(part: str) -> str:
    return quote(part, safe="")


def _raise_for_status(response: requests.Response) -> None:
    if response.status_code >= 400:
        raise AirflowServiceError(
            f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:2000]}"
        )


# -- python -m step_patterns_sandbox.airflow_services: the UI on the local cloud, until Ctrl-C ---------------
def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile
    import threading
    from datetime import UTC, datetime, timedelta

    from step_patterns_sandbox.cloud import CloudSettings, LocalCloud, airflow_environment
    from step_patterns_sandbox.demo_data import seed_leads

    parser = argparse.ArgumentParser(
        prog="python -m step_patterns_sandbox.airflow_services",
        description="Run the local cloud and Airflow's services on it; print the UI's address.",
    )
    parser.add_argument("--seed-days", type=int, default=3, help="days of demo leads up to yesterday (0: none)")
    parser.add_argument("--per-day", type=int, default=20, help="leads per seeded day")
    parser.add_argument("--login", action="store_true", help="require a login (user admin, printed password)")
    parser.add_argument("--backfill", action="store_true", help="unpause redshift_to_pipedrive and backfill the seeded days")
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    work = Path(tempfile.mkdtemp(prefix="step-patterns-airflow-"))
    with LocalCloud(CloudSettings(port=0, state_dir=work / "cloud")) as cloud:
        if args.seed_days > 0:
            yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
            seed_leads(cloud.warehouse, days=args.seed_days, per_day=args.per_day, last_day=yesterday)
        with AirflowServices(work / "airflow", airflow_environment(cloud.endpoints), all_admins=not args.login) as services:
            services.api.wait_for_dags("redshift_to_pipedrive", "redshift_wait_loop")
            print(f"Airflow UI:    {services.url}", flush=True)
            print(f"Pipedrive syncs page: {services.url}/pipedrive-syncs/ (in the UI: Browse > Pipedrive syncs)")
            if services.password:
                print(f"  login:       {services.username} / {services.password}")
            print(f"Service logs:  {services.log_dir}")
            print(f"Metadata DB:   {services.database} on {services.pg_url} (dropped on exit)")
            if args.backfill and args.seed_days > 0:
                first = (datetime.now(UTC) - timedelta(days=args.seed_days)).date().isoformat()
                services.api.unpause("redshift_to_pipedrive")
                result = services.cli("backfill", "create", "--dag-id", "redshift_to_pipedrive",
                                      "--from-date", first, "--to-date", yesterday, "--max-active-runs", "1")
                print(f"Backfill {first} .. {yesterday}: {'created' if result.succeeded else result.output[-2000:]}")
            print("Ctrl-C to stop.", flush=True)
            while not stop.wait(1):
                services.check_alive()
    return 0


if __name__ == "__main__":
    sys.exit(main())
