"""Chunk size, and JSON Lines chunk objects written to S3 one full chunk at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from step_lambdas.contract import checks, layout
from step_lambdas.manifest import FUNCTIONS

DEFAULT_SYNCER_TIMEOUT_S = 900
# Seconds of each chunk-syncer invocation not spent sending: cold start, reading the chunk,
# building the external-id -> deal-id map, writing results.
SYNCER_RESERVE_S = 60
# Share of the remaining time the rate limit is planned to use: the limiter keeps a jitter
# margin, 429 pauses and retries cost time, and some records need a search before a write.
SAFETY_FACTOR = 0.8
# One chunk object stays small enough for the syncer to read whole and to upload in one PUT.
DEFAULT_CHUNK_MAX_BYTES = 8 * 1024 * 1024


def syncer_timeout_s() -> int:
    """The chunk syncer's timeout from the bundle's function list, 900 s if it is not there yet."""
    spec = FUNCTIONS.get("chunk-syncer")
    return spec.timeout_s if spec is not None else DEFAULT_SYNCER_TIMEOUT_S


def chunk_size_for_rate(requests: int, per_seconds: float, timeout_s: int | None = None) -> int:
    """The seed's ``l``: records one chunk-syncer invocation can sync before its timeout.

    ``l = floor(requests / per_seconds * (timeout_s - SYNCER_RESERVE_S) * SAFETY_FACTOR)``,
    at least 1. It plans one request per record (an update or a create; the external-id map
    is listed 500 deals a request). The plan need not be exact: a syncer that runs short
    returns a cursor and the state machine continues the same chunk. E.g. 20 requests / 2 s
    and 900 s: 10 * 840 * 0.8 = 6720 records.
    """
    timeout_s = syncer_timeout_s() if timeout_s is None else timeout_s
    checks.integer("rate.requests", requests)
    checks.number("rate.per_seconds", per_seconds, exclusive=True)
    usable_s = max(timeout_s - SYNCER_RESERVE_S, 1)
    return max(1, math.floor(requests / per_seconds * usable_s * SAFETY_FACTOR))


class RecordTooLarge(ValueError):
    """One record alone is over the chunk byte budget."""


@dataclass(frozen=True)
class ManifestEntry:
    index: int
    key: str
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "records": self.records}


class ChunkWriter:
    """Collects JSON lines into the current chunk and uploads it when it is full.

    A chunk is full at ``max_records`` records or when the next line would pass
    ``max_bytes``; memory holds one chunk. Keys follow :func:`layout.chunk_key`, so a rerun
    of the same result writes the same objects.
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, max_records: int, max_bytes: int = DEFAULT_CHUNK_MAX_BYTES):
        if max_records < 1 or max_bytes < 1:
            raise ValueError("max_records and max_bytes must be >= 1")
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self.max_records, self.max_bytes = max_records, max_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self.entries: list[ManifestEntry] = []

    def add(self, line: bytes) -> None:
        """Add one JSON line (newline included). RecordTooLarge when it alone passes the budget."""
        if len(line) > self.max_bytes:
            raise RecordTooLarge(
                f"record is {len(line)} bytes as JSON, over the chunk budget of {self.max_bytes} bytes"
            )
        if self._lines and (len(self._lines) >= self.max_records or self._size + len(line) > self.max_bytes):
            self.flush()
        self._lines.append(line)
        self._size += len(line)

    def flush(self) -> None:
        if not self._lines:
            return
        index = len(self.entries)
        key = layout.chunk_key(self._prefix, index)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=b"".join(self._lines),
                            ContentType="application/x-ndjson")
        self.entries.append(ManifestEntry(index, key, len(self._lines)))
        self._lines, self._size = [], 0
