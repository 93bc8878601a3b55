"""Lambda: upsert one chunk into Pipedrive Deals; returns ``{"done", "cursor", "counts"}``.

Named errors: ``InvalidChunkRequest``, ``ChunkObjectInvalid``, ``DailyBudgetExceeded``,
``BlockedByServer``, ``AuthenticationFailed``, ``TokenNotConfigured``, ``ExecutionStopped``.
"""

from step_lambdas.aws import client
from step_lambdas.chunk_sync import sync_chunk
from step_lambdas.contract.events import ChunkSyncRequest


def handler(event, context):
    request = ChunkSyncRequest.from_event(event)
    return sync_chunk(request, client("s3"), client("secretsmanager"), context.get_remaining_time_in_millis,
                      sfn=client("stepfunctions"))
