"""Run the chunked iterator on the local cloud the way the operator does, and count what landed.

The reliability suite drives the Step Functions machine directly (no Airflow) so each fault
costs seconds: the definition comes from the same builder and the input from the same
operator code as a DAG run; only scheduling is left out (tests/e2e and tests/scheduler
cover that).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from step_patterns.asl import ChunkedIteratorSettings, build_chunked_iterator
from step_patterns.operators import ChunkedIteratorOperator

DAY_SQL = """
    SELECT lead_id, company, source, score
    FROM leads
    WHERE created_at >= CAST(:start AS TIMESTAMP) AND created_at < CAST(:end AS TIMESTAMP)
    ORDER BY lead_id
"""
DAY = "2026-10-14"  # a day of its own: no other suite syncs it
LEADS = 60
FIELD_MAPPING = {"lead_id": "external_id", "company": "title", "source": "Lead source", "score": "Score"}


@dataclass
class Outcome:
    """How one execution ended, with the report the Report Lambda wrote (when it got there)."""

    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    output: dict[str, Any] | None
    input: str
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        assert self.output is not None, f"no report: execution {self.status} {self.error}: {self.cause}"
        return self.output


@dataclass
class SyncJob:
    """One sync task's settings, as a DAG author would give them to the operator."""

    cloud: Any
    day: str = DAY
    rate: str = "100/2s"
    chunk_size: int | None = 25
    map_mode: str = "INLINE"
    concurrency: int = 8
    sql: str = DAY_SQL
    parameters: dict[str, str] | None = None
    pipedrive_secret_arn: str | None = None
    redshift_secret_arn: str | None = None  # default: the deployment's Redshift secret
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    _started: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)  # arn -> (input, clock)

    def operator(self) -> ChunkedIteratorOperator:
        endpoints = self.cloud.endpoints
        next_day = _next_day(self.day)
        return ChunkedIteratorOperator(
            task_id=f"reliability_{self.name}",
            sql=self.sql,
            parameters=self.parameters if self.parameters is not None else {
                "start": f"{self.day} 00:00:00", "end": f"{next_day} 00:00:00"},
            field_mapping=FIELD_MAPPING,
            database=endpoints.database,
            cluster_identifier=endpoints.cluster_identifier,
            secret_arn=self.redshift_secret_arn or endpoints.redshift_secret_arn,
            role_arn=endpoints.states_role_arn,
            bucket=endpoints.bucket,
            pipedrive_secret_arn=self.pipedrive_secret_arn or endpoints.pipedrive_secret_arn,
            pipedrive_base_url=endpoints.pipedrive_base_url,
            prefix=f"step-patterns/runs/reliability/{self.name}/{self.day}",
            sync_state_prefix=f"step-patterns/sync-state/reliability/{self.name}",
            rate=self.rate,
            concurrency=self.concurrency,
            chunk_size=self.chunk_size,
            map_mode=self.map_mode,
        )

    def state_machine(self) -> str:
        """Create this job's machine (idempotent per job) from the operator's own builder settings."""
        functions = self.cloud.endpoints.functions
        definition = build_chunked_iterator(ChunkedIteratorSettings(
            query_executor_arn=functions["query-executor"], chunk_syncer_arn=functions["chunk-syncer"],
            report_arn=functions["report"], map_mode=self.map_mode,
        ))
        sfn = self.cloud.client("stepfunctions")
        name = f"reliability-{self.name}"
        try:
            return sfn.create_state_machine(
                name=name, definition=json.dumps(definition.to_dict()), roleArn=self.cloud.endpoints.states_role_arn,
            )["stateMachineArn"]
        except sfn.exceptions.StateMachineAlreadyExists:
            return next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name)

    def run(self, timeout_s: float = 180) -> Outcome:
        """Start one execution with the operator's input and wait for its end."""
        return self.wait(self.start(), timeout_s)

    def start(self) -> str:
        """Start one execution with the operator's input; returns its ARN."""
        execution_input = json.dumps(self.operator().build_input({}))
        arn = self.cloud.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine(), name=f"run-{uuid.uuid4().hex[:12]}", input=execution_input,
        )["executionArn"]
        self._started[arn] = (execution_input, time.monotonic())
        return arn

    def wait(self, arn: str, timeout_s: float = 180) -> Outcome:
        """Wait for a started execution's end."""
        sfn = self.cloud.client("stepfunctions")
        execution_input, started = self._started[arn]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() - started < timeout_s, f"execution still running after {timeout_s} s"
            time.sleep(0.25)
        output = described.get("output")
        return Outcome(
            execution_arn=arn, status=described["status"], error=described.get("error"),
            cause=described.get("cause"), output=json.loads(output) if output else None,
            input=execution_input, seconds=round(time.monotonic() - started, 1),
        )

    def failures(self) -> list[dict[str, Any]]:
        """The run's ``failures.jsonl``: every record that did not land, with its reasons."""
        from step_lambdas.contract import layout

        key = layout.failures_key(f"step-patterns/runs/reliability/{self.name}/{self.day}")
        body = self.cloud.client("s3").get_object(Bucket=self.cloud.endpoints.bucket, Key=key)["Body"].read()
        return [json.loads(line) for line in body.splitlines() if line.strip()]


def execution_history(cloud, execution_arn: str) -> list[dict]:
    """Every event of an execution's history, all pages."""
    pages = cloud.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def day_leads(cloud, day: str) -> dict[str, str]:
    """The warehouse's leads of one day: lead id -> company (the Deal title they must become)."""
    rows = cloud.warehouse.execute(
        "SELECT lead_id, company FROM leads WHERE CAST(created_at AS DATE) = CAST(:day AS DATE)", {"day": day})
    return dict(rows)


def crm_deals(cloud) -> dict[str, list[dict]]:
    """Every deal in the Pipedrive sandbox grouped by External ID (a list longer than 1 is a duplicate).

    Read from the sandbox's store, not over its API: counting must not spend the rate limit or
    the daily budget a drill is exhausting, nor show in the request counts it asserts on.
    """
    key = cloud.pipedrive.field_key("External ID")
    deals: dict[str, list[dict]] = {}
    after = 0
    while True:
        page, more = cloud.pipedrive.store.page(after, 500)
        for deal in page:
            deals.setdefault(deal["custom_fields"][key], []).append(deal)
        if not more or not page:
            return deals
        after = page[-1]["id"]


@dataclass(frozen=True)
class Landing:
    """What reached the CRM compared with what the warehouse holds."""

    lost: list[str]
    duplicated: list[str]
    wrong_title: list[str]

    @property
    def perfect(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_title)


def landing(cloud, expected: dict[str, str]) -> Landing:
    """Compare the CRM with ``expected`` (external id -> title): lost, duplicated, wrongly titled."""
    deals = crm_deals(cloud)
    return Landing(
        lost=sorted(set(expected) - set(deals)),
        duplicated=sorted(ext for ext, found in deals.items() if len(found) > 1),
        wrong_title=sorted(ext for ext, title in expected.items()
                           if ext in deals and deals[ext][0]["title"] != title),
    )


def _next_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
