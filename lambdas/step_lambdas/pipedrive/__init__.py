"""Pipedrive Deals upsert: record contract, rolling-window limiter, v2 client, sync state.

Typical use (the chunk-syncer Lambda and ``step-patterns sync`` do exactly this)::

    limiter = SlidingWindowLimiter(limit=None, window_s=2.0)   # N learned from the server
    client = PipedriveClient(base_url, load_api_token(secret_arn), limiter)
    report = sync_records(records, client=client, state=state, options=SyncOptions(),
                          start=cursor,
                          deadline=deadline_from_remaining_ms(context.get_remaining_time_in_millis()))
    report.summary.cursor  # == len(records) when done; else call again with start=cursor
"""

from .client import PipedriveClient
from .errors import (
    AmbiguousWriteError,
    AuthenticationFailed,
    BlockedByServer,
    DailyBudgetExceeded,
    DeadlineReached,
    PipedriveError,
    PipedriveRequestError,
    RetriesExhausted,
    StopRun,
)
from .limiter import SlidingWindowLimiter
from step_lambdas.contract.rate import parse_rate
from .records import DealRecord, FieldCatalog, FieldError, InvalidRecord, RecordValidator
from .sync_state import LocalFileSyncState, S3SyncState, StateEntry, SyncState
from .token import ENV_VAR as TOKEN_ENV_VAR, TokenNotConfigured, load_api_token
from .upsert import (
    DealSyncer,
    RecordResult,
    SyncOptions,
    SyncReport,
    SyncSummary,
    deadline_from_remaining_ms,
    sync_records,
)

__all__ = [
    "AmbiguousWriteError", "AuthenticationFailed", "BlockedByServer", "DailyBudgetExceeded",
    "DeadlineReached", "DealRecord", "DealSyncer", "FieldCatalog", "FieldError", "InvalidRecord",
    "LocalFileSyncState", "PipedriveClient", "PipedriveError", "PipedriveRequestError",
    "RecordResult", "RecordValidator", "RetriesExhausted", "S3SyncState", "SlidingWindowLimiter",
    "StateEntry", "StopRun", "SyncOptions", "SyncReport", "SyncState", "SyncSummary",
    "TOKEN_ENV_VAR", "TokenNotConfigured", "deadline_from_remaining_ms", "load_api_token", "parse_rate", "sync_records",
]
