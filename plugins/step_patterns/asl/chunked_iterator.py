"""The chunked iterator: query -> chunks in S3 -> Map over the chunks -> report.

Execution input::

    {"query": {<statement-starter input: sql, parameters, database, ...>},
     "target": {"external_id_field", "field_mapping", "pipedrive_secret_arn",
                "pipedrive_base_url", "rate": {"requests", "per_seconds"}, "concurrency"},
     "output": {"bucket", "prefix"}, "chunk_size": int | null, "tolerance": {...}}

Lambda contracts:
- query executor: gets the whole input and returns ``{"bucket", "prefix", "manifest_key",
  "chunks", "records", "contract_errors"}``, plus ``"items"`` (the manifest entries) which
  an INLINE Map iterates over (required in INLINE mode); kept at ``$.export``. The manifest
  at ``s3://bucket/manifest_key`` is a JSON array of ``{"index", "key", "records"}``.
- chunk syncer: gets ``{"chunk": <manifest entry>, "cursor": int, "target", "output",
  "execution_arn"}`` and returns ``{"done": bool, "cursor": int, "counts": {...}}``. When ``done`` is false the
  same chunk is sent again from the returned cursor, which must have moved forward.
- report: gets ``{"export", "output", "execution_name", "execution_start_time"}``; what
  it returns is the execution output. After a failed Map it also gets ``"sync_error"`` (the
  Map's caught error), writes the report all the same and raises ``ChunksNotSynced`` naming
  the records were not synced and why; that error is the ChunkSyncFailed state's cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from step_lambdas.contract import checks
from step_lambdas.contract.events import ChunkSyncRequest, ReportRequest

from .conditions import Condition
from .integrations import (
    LAMBDA_INVOKE,
    LAMBDA_SERVICE_ERRORS,
    RetryPolicy,
    catch_all,
    caught_error_fail,
    lambda_payload_selector,
)
from .machine import StateGraph, StateMachine
from .paths import Intrinsic, JsonPath
from .states import Choice, ChoiceRule, Fail, ItemReader, Map, Pass, Retry, Succeed, Task

# State names
RUN_QUERY = "RunQuery"
SYNC_CHUNKS = "SyncChunks"
SYNC_CHUNK = "SyncChunk"
CHECK_CHUNK_DONE = "CheckChunkDone"
CONTINUE_CHUNK = "ContinueChunk"
CHUNK_SYNCED = "ChunkSynced"
CHUNK_SYNC_STALLED = "ChunkSyncStalled"
REPORT = "Report"
REPORT_FAILED_SYNC = "ReportFailedSync"
QUERY_FAILED = "QueryFailed"
CHUNK_SYNC_FAILED = "ChunkSyncFailed"
REPORT_FAILED = "ReportFailed"

EXPORT_PATH = "$.export"
EXPORT_FIELDS = ("bucket", "prefix", "manifest_key", "chunks", "records", "contract_errors")
SYNC_RESULT_FIELDS = ("done", "cursor", "counts")

# A Lambda that timed out or was killed ends as Sandbox.Timedout, Runtime.ExitError (crash,
# out of memory) or Lambda.Unknown (older
# runtimes). Retrying those is safe only for the chunk syncer, whose contract is that a rerun
# of the same chunk creates nothing twice.
IDEMPOTENT_RERUN_ERRORS = ("Sandbox.Timedout", "Runtime.ExitError", "Lambda.Unknown")

MapMode = Literal["DISTRIBUTED", "INLINE"]  # checks.MAP_MODES; their limits: checks.MAX_MAP_CONCURRENCY


@dataclass(frozen=True)
class ChunkedIteratorSettings:
    """Everything the chunked-iterator builder needs; validated on construction.

    ``max_concurrency`` defaults to 1: one writer per Pipedrive token keeps the rate limit a
    single limiter's job. ``tolerated_failure_percentage`` (DISTRIBUTED only) is the share of
    chunks allowed to fail before the Map fails; per-record failures are not chunk failures.
    """

    query_executor_arn: str
    chunk_syncer_arn: str
    report_arn: str
    map_mode: MapMode = "DISTRIBUTED"
    max_concurrency: int = 1
    tolerated_failure_percentage: float = 0.0
    chunk_rerun_attempts: int = 2
    timeout_seconds: int = 43_200
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    comment: str = "Chunked iterator: query Redshift into S3 chunks, sync each chunk to Pipedrive, report."

    def __post_init__(self) -> None:
        for name in ("query_executor_arn", "chunk_syncer_arn", "report_arn"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("arn:"):
                raise ValueError(f"{name} must be a Lambda ARN, got {value!r}")
        checks.map_concurrency("max_concurrency", self.max_concurrency, self.map_mode)
        if checks.number("tolerated_failure_percentage", self.tolerated_failure_percentage, 0, 100) and self.map_mode == "INLINE":
            raise ValueError("tolerated_failure_percentage needs map_mode='DISTRIBUTED' (an INLINE Map fails on any failure)")
        checks.integer("chunk_rerun_attempts", self.chunk_rerun_attempts, 0, 10)
        checks.execution_timeout("timeout_seconds", self.timeout_seconds)


def build_chunked_iterator(settings: ChunkedIteratorSettings) -> StateMachine:
    lambda_retry = settings.retry.retry(LAMBDA_SERVICE_ERRORS)
    states = (
        _run_query(settings, lambda_retry),
        _sync_chunks(settings, lambda_retry),
        _report(settings, lambda_retry, REPORT, catch_to=REPORT_FAILED,
                comment="The report Lambda totals the per-chunk results in S3; its output is the execution output."),
        _report(settings, lambda_retry, REPORT_FAILED_SYNC, catch_to=CHUNK_SYNC_FAILED, sync_error=True,
                comment="After a failed Map: report what did land and which records were not synced and why, then "
                        "fail with ChunksNotSynced (the Map's own error alone would only say a threshold was exceeded)."),
        caught_error_fail(QUERY_FAILED, "The query executor"),
        caught_error_fail(CHUNK_SYNC_FAILED, "Syncing the chunks"),
        caught_error_fail(REPORT_FAILED, "The report"),
    )
    return StateMachine(
        graph=StateGraph(start_at=RUN_QUERY, states=states),
        comment=settings.comment,
        timeout_seconds=settings.timeout_seconds,
    )


def _report(settings: ChunkedIteratorSettings, retry: Retry, name: str, *, catch_to: str, comment: str,
            sync_error: bool = False) -> Task:
    sources = {"export": EXPORT_PATH, "output": "$.output", "execution_name": "$$.Execution.Name",
               "execution_start_time": "$$.Execution.StartTime"}
    payload = {name: JsonPath(sources[name]) for name in ReportRequest.EVENT_FIELDS}
    flow: dict = dict(output_path="$.Payload")  # the report is the execution output
    if sync_error:
        payload[ReportRequest.SYNC_ERROR_FIELD] = JsonPath("$.error")
        # The Lambda raises ChunksNotSynced, caught into the Fail state; were it ever to return,
        # the Map's own error (kept at $.error) still fails the execution: never a success.
        flow = dict(result_path=None, next=catch_to)
    return Task(
        name=name,
        comment=comment,
        resource=LAMBDA_INVOKE,
        parameters={"FunctionName": settings.report_arn, "Payload": payload},
        retry=(retry,),
        catch=(catch_all(catch_to),),
        **flow,
    )


def _run_query(settings: ChunkedIteratorSettings, retry: Retry) -> Task:
    # INLINE iterates over the manifest entries the executor returns as ``items``; naming
    # the field makes a missing one fail RunQuery with the path in the message.
    fields = EXPORT_FIELDS + (("items",) if settings.map_mode == "INLINE" else ())
    return Task(
        name=RUN_QUERY,
        comment="The query executor runs the SQL and writes the records to S3 as JSON Lines chunks plus a manifest.",
        resource=LAMBDA_INVOKE,
        parameters={"FunctionName": settings.query_executor_arn, "Payload": JsonPath("$")},
        result_selector=lambda_payload_selector(fields),
        result_path=EXPORT_PATH,
        retry=(retry,),
        catch=(catch_all(QUERY_FAILED),),
        next=SYNC_CHUNKS,
    )


def _chunk_sync_event(**sources) -> dict:
    """The chunk syncer's event (the contract's fields), each taken from the same field of the
    iteration's state unless ``sources`` says otherwise."""
    unknown = set(sources) - set(ChunkSyncRequest.EVENT_FIELDS)
    if unknown:
        raise ValueError(f"the chunk syncer's event has no field {', '.join(sorted(unknown))}")
    return {name: sources.get(name, JsonPath(f"$.{name}")) for name in ChunkSyncRequest.EVENT_FIELDS}


def _sync_chunks(settings: ChunkedIteratorSettings, retry: Retry) -> Map:
    chunk_retry = [retry]
    if settings.chunk_rerun_attempts:
        chunk_retry.append(
            Retry(
                errors=IDEMPOTENT_RERUN_ERRORS,
                interval_seconds=settings.retry.interval_seconds,
                max_attempts=settings.chunk_rerun_attempts,
                backoff_rate=settings.retry.backoff_rate,
            )
        )
    processor = StateGraph(
        start_at=SYNC_CHUNK,
        states=(
            Task(
                name=SYNC_CHUNK,
                comment="The chunk syncer upserts one chunk's records from the cursor on, until done or short of time.",
                resource=LAMBDA_INVOKE,
                parameters={"FunctionName": settings.chunk_syncer_arn, "Payload": _chunk_sync_event()},
                result_selector=lambda_payload_selector(SYNC_RESULT_FIELDS),
                result_path="$.sync",
                retry=tuple(chunk_retry),
                next=CHECK_CHUNK_DONE,
            ),
            Choice(
                name=CHECK_CHUNK_DONE,
                comment="Loop back while the syncer ran short of time, as long as its cursor moves forward.",
                rules=(
                    ChoiceRule(Condition.boolean_equals("$.sync.done", True), CHUNK_SYNCED),
                    ChoiceRule(
                        Condition.and_(
                            Condition.boolean_equals("$.sync.done", False),
                            Condition.number_greater_than_path("$.sync.cursor", "$.cursor"),
                        ),
                        CONTINUE_CHUNK,
                    ),
                ),
                default=CHUNK_SYNC_STALLED,
            ),
            Pass(
                name=CONTINUE_CHUNK,
                comment="Same chunk again, from the cursor the syncer returned.",
                parameters=_chunk_sync_event(cursor=JsonPath("$.sync.cursor")),
                next=SYNC_CHUNK,
            ),
            Succeed(name=CHUNK_SYNCED, output_path="$.sync"),
            Fail(
                name=CHUNK_SYNC_STALLED,
                comment="Not done and no progress: stop instead of looping forever.",
                error=CHUNK_SYNC_STALLED,
                cause=Intrinsic(
                    "States.Format('Chunk {} returned done={} with cursor {} after starting at cursor {}.', "
                    "$.chunk.key, $.sync.done, $.sync.cursor, $.cursor)"
                ),
            ),
        ),
    )
    item_selector = _chunk_sync_event(
        chunk=JsonPath("$$.Map.Item.Value"),
        cursor=0,
        # The run's own execution (the item selector is evaluated in the parent, also for a
        # DISTRIBUTED Map): the syncer polls it and stops sending once it is stopped, since
        # StopExecution does not interrupt a Lambda invocation in flight.
        execution_arn=JsonPath("$$.Execution.Id"),
    )
    common = dict(
        name=SYNC_CHUNKS,
        comment="One iteration per chunk; per-chunk results go to S3, not into the state payload (256 KiB cap).",
        processor=processor,
        item_selector=item_selector,
        max_concurrency=settings.max_concurrency,
        result_path=None,
        catch=(catch_all(REPORT_FAILED_SYNC),),
        next=REPORT,
    )
    if settings.map_mode == "INLINE":
        return Map(mode="INLINE", items_path=f"{EXPORT_PATH}.items", **common)
    return Map(
        mode="DISTRIBUTED",
        item_reader=ItemReader(bucket=JsonPath(f"{EXPORT_PATH}.bucket"), key=JsonPath(f"{EXPORT_PATH}.manifest_key")),
        tolerated_failure_percentage=settings.tolerated_failure_percentage,
        **common,
    )
