"""What the Pipedrive syncs page shows, read from Airflow's metadata database and the run's S3 objects.

A chunked-iterator run is a task instance that pushed the ``step_patterns_sync`` XCom (its
bucket, prefix, rate and AWS connection) when it started; its report is its ``return_value``
XCom, or the run's ``report.json`` when the task failed after the report was written (more
failed records than ``max_failed_records``). Failed records and per-segment request counts
come from S3, read with the task's own AWS connection (S3Hook).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Iterable

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from step_lambdas.contract import layout
from step_lambdas.contract.rate import parse_rate
from step_lambdas.contract.results import read_segment_results
from step_patterns.ui import SYNC_LOCATION_KEY

RETURN_KEY = "return_value"
COUNTS = ("records", "created", "updated", "unchanged", "failed", "responses_429", "requests")
MAX_WINDOWS = 3000  # bars in the chart: 100 minutes of 2 s windows
_FIELD = re.compile(r"([A-Za-z_][\w.\[\]-]*): ")  # a FieldError's "field: expected ..., got ..."


@dataclass
class SyncRun:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    state: str | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    location: dict[str, Any]
    report: dict[str, Any] | None = None
    report_source: str = "xcom"  # or "s3" (report.json) or "none" (no report yet)

    @property
    def limit(self) -> tuple[int, float] | None:
        try:
            return parse_rate(str(self.location.get("rate") or ""))
        except ValueError:
            return None

    @property
    def limit_per_second(self) -> float | None:
        limit = self.limit
        return limit[0] / limit[1] if limit else None

    def summary(self) -> dict[str, Any]:
        report = self.report or {}
        return {
            "dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id, "map_index": self.map_index,
            "state": self.state,
            "data_interval_start": _iso(self.data_interval_start), "data_interval_end": _iso(self.data_interval_end),
            **{name: report.get(name) for name in COUNTS},
            "requests_per_second": report.get("requests_per_second"),
            "limit_per_second": self.limit_per_second,
            "elapsed_s": report.get("elapsed_s"),
            "report_source": self.report_source,
        }


@dataclass
class FailurePage:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    location: str


@dataclass
class Window:
    """Requests of one chunk-syncer segment, as an average per rate window."""

    label: str
    requests: int
    elapsed_s: float
    per_window: float


@dataclass
class RunDetail:
    run: SyncRun
    windows: list[Window] = field(default_factory=list)
    per_window: bool = False  # windows are rate windows (True) or chunk-syncer segments (False)
    failures: FailurePage | None = None
    problem: str | None = None  # why S3 could not be read, shown on the page


def _runs_query(*where):
    """Task instances with the sync-location XCom, their DAG run and their report XCom (if any)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel

    report = aliased(XComModel)
    return (
        select(XComModel.value, report.value, TI.dag_id, TI.task_id, TI.run_id, TI.map_index, TI.state,
               DagRun.data_interval_start, DagRun.data_interval_end, TI.start_date, TI.end_date)  # SyncRun's order
        .join(TI, and_(TI.dag_id == XComModel.dag_id, TI.run_id == XComModel.run_id,
                       TI.task_id == XComModel.task_id, TI.map_index == XComModel.map_index))
        .join(DagRun, DagRun.id == XComModel.dag_run_id)
        .outerjoin(report, and_(report.dag_run_id == XComModel.dag_run_id, report.task_id == XComModel.task_id,
                                report.map_index == XComModel.map_index, report.key == RETURN_KEY))
        .where(XComModel.key == SYNC_LOCATION_KEY, *where)
    )


def list_runs(session: Session, dag_ids: Iterable[str], *, limit: int, offset: int) -> tuple[list[SyncRun], int]:
    """The chunked-iterator runs of ``dag_ids``, newest data interval first, with their XCom reports."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel

    dag_ids = list(dag_ids)
    if not dag_ids:
        return [], 0
    total = session.scalar(select(func.count()).select_from(XComModel).where(
        XComModel.key == SYNC_LOCATION_KEY, XComModel.dag_id.in_(dag_ids))) or 0
    rows = session.execute(
        _runs_query(XComModel.dag_id.in_(dag_ids))
        .order_by(DagRun.data_interval_start.desc().nulls_last(), TI.dag_id, TI.task_id, TI.run_id)
        .limit(limit).offset(offset)
    ).all()
    return [_sync_run(row) for row in rows], total


def get_run(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> SyncRun | None:
    from airflow.models.xcom import XComModel

    row = session.execute(_runs_query(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id,
        XComModel.task_id == task_id, XComModel.map_index == map_index,
    )).first()
    return _sync_run(row) if row else None


def _sync_run(row) -> SyncRun:
    from airflow.models.xcom import XComModel

    location, report = XComModel.deserialize_value(_Value(row[0])), None
    if row[1] is not None:
        report = XComModel.deserialize_value(_Value(row[1]))
    run = SyncRun(*row[2:], location=location if isinstance(location, dict) else {})
    if isinstance(report, dict):
        run.report = report
    else:
        run.report_source = "none"
    return run


@dataclass
class _Value:  # XComModel.deserialize_value reads ``.value`` of a result row
    value: Any


class RunObjects:
    """The run's objects in S3, read with the task's AWS connection."""

    def __init__(self, run: SyncRun):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        self.bucket = str(run.location.get("bucket") or "")
        self.prefix = layout.normalize_prefix(str(run.location.get("prefix") or ""))
        self.hook = S3Hook(aws_conn_id=run.location.get("aws_conn_id") or "aws_default",
                           region_name=run.location.get("region_name"))

    def report(self) -> dict[str, Any] | None:
        key = layout.report_key(self.prefix)
        if not self.hook.check_for_key(key, self.bucket):
            return None
        return json.loads(self.hook.read_key(key, self.bucket))

    def windows(self, limit: tuple[int, float] | None) -> tuple[list[Window], bool]:
        """Requests per rate window over the run (True), or per segment for syncers that did not record windows."""
        window_s = limit[1] if limit else 2.0
        segments = sorted(read_segment_results(self.hook.conn, self.bucket, self.prefix),
                          key=lambda s: (s.chunk, s.cursor_start))
        if segments and all(s.windows is not None for s in segments):
            return per_window(segments, window_s), True
        windows = []
        for segment in segments:
            counts = segment.counts
            # a segment shorter than a window sent all its requests within one window
            average = counts.requests / max(counts.elapsed_s, window_s) * window_s
            windows.append(Window(f"chunk {segment.chunk} from record {segment.cursor_start}",
                                  counts.requests, counts.elapsed_s, round(average, 2)))
        return windows, False

    def failures(self, page: int, per_page: int) -> FailurePage:
        """One page of ``failures.jsonl``: external id, field and reason of each failed record."""
        key = layout.failures_key(self.prefix)
        where = layout.s3_uri(self.bucket, key)
        if not self.hook.check_for_key(key, self.bucket):
            return FailurePage([], 0, page, per_page, where)
        body = self.hook.get_key(key, self.bucket).get()["Body"]
        first, items, total = (page - 1) * per_page, [], 0
        for line in body.iter_lines():
            if not line.strip():
                continue
            if first <= total < first + per_page:
                items.append(failure_row(line))
            total += 1
        return FailurePage(items, total, page, per_page, where)


def per_window(segments, window_s: float, most: int = MAX_WINDOWS) -> list[Window]:
    """Every segment's requests summed per window (concurrent syncers add up), idle windows as 0."""
    sent: dict[float, int] = {}
    for segment in segments:
        for start, requests in segment.windows or ():
            sent[start] = sent.get(start, 0) + int(requests)
    if not sent:
        return []
    first, last = min(sent), max(sent)
    count = min(int(round((last - first) / window_s)) + 1, most)
    starts = [first + i * window_s for i in range(count)]
    return [Window(datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S"), sent.get(t, 0), window_s,
                   float(sent.get(t, 0))) for t in starts]


def failure_row(line: bytes) -> dict[str, Any]:
    """A failures.jsonl line as the page shows it: which record, which fields, why."""
    try:
        item = json.loads(line)
    except ValueError:
        item = {"line": line.decode("utf-8", "replace")}
    item = item if isinstance(item, dict) else {"value": item}
    reasons = [str(r) for r in item.get("reasons") or []] or [str(item.get("line") or item.get("value") or "")]
    fields = sorted({m.group(1) for r in reasons if (m := _FIELD.match(r))})
    where = ("row " + str(item["row"])) if "row" in item else (
        f"chunk {item['chunk']}" + (f" record {item['index']}" if "index" in item else "") if "chunk" in item else "")
    return {
        "external_id": item.get("external_id"),
        "fields": fields,
        "reasons": reasons,
        "source": item.get("source"),
        "where": where,
        "not_synced": item.get("not_synced"),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
