"""The chunk syncer's work: upsert one chunk's records into Pipedrive, a segment at a time.

Input (see ``step_patterns.asl.chunked_iterator``)::

    {"chunk": {"index", "key", "records"}, "cursor": int,
     "target": {"external_id_field", "pipedrive_secret_arn", "pipedrive_base_url",
                "rate": {"requests", "per_seconds"}, "concurrency"},
     "output": {"bucket", "prefix", "sync_state_prefix"}, "execution_arn": str | null}

It stops sending within seconds once ``execution_arn`` is no longer RUNNING (see
``execution_watch``).

It stops sending before the Lambda's timeout and returns the cursor of the next record;
the state machine calls it again from there. Every create is in the sync state before the
next attempt, so a rerun (Step Functions retry, redrive, Airflow retry) creates nothing twice.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

from step_lambdas.contract import layout
from step_lambdas.contract.events import ChunkSyncRequest, InvalidChunkRequest
from step_lambdas.execution_watch import ExecutionWatch
from step_lambdas.pipedrive import (
    AuthenticationFailed,
    PipedriveClient,
    S3SyncState,
    SlidingWindowLimiter,
    SyncOptions,
    deadline_from_remaining_ms,
    load_api_token,
    sync_records,
)
from step_lambdas.pipedrive.token import forget_api_token
from step_lambdas.contract.results import SegmentCounts, SegmentResult, write_segment_result


class ChunkObjectInvalid(ValueError):
    """A chunk object in S3 is not the JSON Lines the query executor writes."""


def read_chunk(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    records = []
    for number, line in enumerate(body.iter_lines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise ChunkObjectInvalid(f"s3://{bucket}/{key} line {number}: not JSON ({error})") from None
        if not isinstance(record, dict):
            raise ChunkObjectInvalid(f"s3://{bucket}/{key} line {number}: expected an object")
        records.append(record)
    return records


# One client (and so one limiter) per container and target: a warm container that picks up
# the next segment keeps the rolling window it already knows instead of bursting again.
_clients: dict[tuple, PipedriveClient] = {}
_clients_lock = threading.Lock()


def _client_key(request: ChunkSyncRequest) -> tuple:
    return (request.base_url, request.secret_arn, request.rate_requests, request.rate_window_s)


def pipedrive_client(request: ChunkSyncRequest, secrets: Any) -> PipedriveClient:
    key = _client_key(request)
    with _clients_lock:
        if key not in _clients:
            token = load_api_token(request.secret_arn, secrets_client=secrets)
            limiter = SlidingWindowLimiter(limit=request.rate_requests, window_s=request.rate_window_s)
            _clients[key] = PipedriveClient(request.base_url, token, limiter, pool_size=max(16, request.concurrency))
        return _clients[key]


def forget_client(request: ChunkSyncRequest) -> None:
    """Drop the client and token of ``request``'s secret: the next invocation reads the secret again."""
    with _clients_lock:
        _clients.pop(_client_key(request), None)
    forget_api_token(request.secret_arn)


def sync_chunk(request: ChunkSyncRequest, s3: Any, secrets: Any, remaining_ms: Callable[[], int],
               sfn: Any = None) -> dict[str, Any]:
    records = read_chunk(s3, request.bucket, request.key)
    if request.cursor > len(records):
        raise InvalidChunkRequest(f"cursor {request.cursor} is past the chunk's {len(records)} records")
    state = S3SyncState(request.bucket, request.sync_state_prefix,
                        writer_id=f"chunk-{request.index:06d}", s3_client=s3)
    client = pipedrive_client(request, secrets)
    client.sent_per_window.clear()  # one invocation at a time per container: this segment's windows
    with ExecutionWatch(sfn, request.execution_arn if sfn is not None else None) as watch:
        report = sync_records(
            records,
            client=client,
            state=state,
            options=SyncOptions(external_id_field=request.external_id_field, concurrency=request.concurrency),
            start=request.cursor,
            deadline=deadline_from_remaining_ms(remaining_ms()),
            on_progress=watch.raise_if_stopped,
        )
    state.fold()  # one journal object per segment for the next reader, not one per create
    summary = report.summary
    failed_key = None
    if report.failures:
        failed_key = layout.segment_key(request.prefix, request.index, request.cursor).replace(
            ".json", "-failed.jsonl"
        )
        lines = (json.dumps({"chunk": request.index, "index": r.index, "external_id": r.external_id,
                             "reasons": r.reasons}) for r in report.failures)
        s3.put_object(Bucket=request.bucket, Key=failed_key, Body="\n".join(lines).encode() + b"\n")
    counts = SegmentCounts(
        records=summary.cursor - request.cursor,
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        failed=summary.failed,
        requests=summary.requests,
        responses_429=summary.responses_429,
        elapsed_s=round(summary.elapsed_s, 3),
    )
    write_segment_result(s3, request.bucket, request.prefix, SegmentResult(
        chunk=request.index, cursor_start=request.cursor, cursor_end=summary.cursor,
        counts=counts, failed_key=failed_key, windows=[[t, n] for t, n in sorted(client.sent_per_window.items())],
        stopped=f"{type(report.stop_error).__name__}: {report.stop_error}" if report.stop_error else None,
    ))
    if report.stop_error is not None:
        # Daily budget, an HTML block page, a refused token, a stopped execution: going on cannot help.
        if isinstance(report.stop_error, AuthenticationFailed):
            forget_client(request)  # a warm container must not keep the refused token once the secret is fixed
        raise report.stop_error
    return {"done": summary.complete, "cursor": summary.cursor, "counts": counts.__dict__}
