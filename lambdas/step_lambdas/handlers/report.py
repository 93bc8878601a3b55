"""Lambda: the chunked iterator's report (its return value is the execution output).

Input: ``{"export", "output", "execution_name", "execution_start_time"}``. Output, also
written to ``{prefix}/report.json``: ``{"records", "created", "updated", "unchanged",
"failed", "contract_errors", "requests", "responses_429", "chunks", "chunks_reported",
"elapsed_s", "requests_per_second", "results_prefix", "failures_location"}``
(see :mod:`step_lambdas.reporting`).

After the Map every chunk syncer has finished, so this is the one place at a time that may
compact the sync state (``output.sync_state_prefix``): its journal objects, one per
create, are folded into the snapshot the next run loads in one read.
"""

import datetime as dt

from step_lambdas.aws import client
from step_lambdas.pipedrive import S3SyncState
from step_lambdas.reporting import ReportRequest, make_report


def handler(event, context):
    request = ReportRequest.from_event(event)
    report = make_report(client("s3"), request, now=dt.datetime.now(dt.timezone.utc))
    state_prefix = (event.get("output") or {}).get("sync_state_prefix")
    if state_prefix:
        S3SyncState(request.bucket, state_prefix, writer_id="report", s3_client=client("s3")).compact()
    return report
