"""Lambda: the chunked iterator's report (its return value is the execution output).

Input: ``{"export", "output", "execution_name", "execution_start_time"}``. Output, also
written to ``{prefix}/report.json``: ``{"records", "created", "updated", "unchanged",
"failed", "contract_errors", "requests", "responses_429", "chunks", "chunks_reported",
"elapsed_s", "requests_per_second", "results_prefix", "failures_location"}``
(see :mod:`step_lambdas.reporting`).

After a failed Map the input also has ``"sync_error"`` (the Map's caught error): the report
is written all the same, then :class:`ChunksNotSynced` is raised, saying how many records
never synced and why; the state machine fails with it (ChunkSyncFailed).

After the Map every chunk syncer has finished, so this is the one place at a time that may
compact the sync state (``output.sync_state_prefix``): its journal objects, one per
create, are folded into the snapshot the next run loads in one read.
"""

import datetime as dt

from step_lambdas.contract import layout
from step_lambdas.aws import client
from step_lambdas.pipedrive import S3SyncState
from step_lambdas.contract.error_text import caught_error_text
from step_lambdas.contract.events import ReportRequest
from step_lambdas.reporting import ChunksNotSynced, make_report


def handler(event, context):
    sync_error = event.get("sync_error") if isinstance(event, dict) else None
    if sync_error is not None:
        raise not_synced_error(event, sync_error)
    request = ReportRequest.from_event(event)
    report = make_report(client("s3"), request, now=dt.datetime.now(dt.timezone.utc))
    state_prefix = (event.get("output") or {}).get("sync_state_prefix")
    if state_prefix:
        S3SyncState(request.bucket, state_prefix, writer_id="report", s3_client=client("s3")).compact()
    return report


def not_synced_error(event, sync_error) -> ChunksNotSynced:
    """The error a failed Map ends with: what was not synced and why, the report written first."""
    map_error = caught_error_text(sync_error)
    try:
        request = ReportRequest.from_event(event)
        report = make_report(client("s3"), request, now=dt.datetime.now(dt.timezone.utc))
    except Exception as error:  # noqa: BLE001 - the Map's error must not be masked by the report's
        return ChunksNotSynced(f"syncing the chunks failed: {map_error} (and no report: {type(error).__name__}: {error})")
    reasons = report["not_synced_because"]
    map_ended = "" if map_error in reasons else f"; the Map ended with {map_error}"
    return ChunksNotSynced(
        f"{report['not_synced']} of {report['records']} records not synced ({'; '.join(reasons)}){map_ended}; "
        f"report: {layout.s3_uri(request.bucket, layout.report_key(request.prefix))}"
    )
