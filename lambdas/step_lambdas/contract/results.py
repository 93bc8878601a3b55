"""What one chunk-syncer invocation (a *segment* of a chunk) reports, and where.

The chunk syncer calls, once per invocation, after it has written its failed records::

    write_segment_result(s3, bucket, prefix, SegmentResult(
        chunk=entry["index"], cursor_start=cursor, cursor_end=new_cursor,
        counts=SegmentCounts(records=..., created=..., updated=..., unchanged=..., failed=...,
                             requests=..., responses_429=..., elapsed_s=...),
        failed_key=key_of_failed_records_jsonl_or_None,
        windows=[[window_start_epoch_s, requests_sent], ...]))  # for the Pipedrive syncs page's chart

The object lands at ``{prefix}/results/{chunk:06d}/{cursor_start:08d}.json``, so a rerun of
the same segment overwrites it. The report follows each chunk's segments from cursor 0
along ``cursor_end``; segments off that chain (left by an earlier attempt that stopped
elsewhere) are not counted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterator

from step_lambdas.contract import checks, layout

COUNT_FIELDS = ("records", "created", "updated", "unchanged", "failed", "requests", "responses_429")


class InvalidSegmentResult(ValueError):
    """A segment result object does not follow this schema."""


def _checked(check, name: str, value: Any) -> None:
    try:
        check(name, value)
    except ValueError as error:
        raise InvalidSegmentResult(str(error)) from None


@dataclass(frozen=True)
class SegmentCounts:
    records: int = 0  # records handled in this segment (cursor_end - cursor_start)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    requests: int = 0  # HTTP requests sent to Pipedrive, retries included
    responses_429: int = 0
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        for name in COUNT_FIELDS:
            value = getattr(self, name)
            _checked(checks.count, f"counts.{name}", value)
        _checked(checks.number, "counts.elapsed_s", self.elapsed_s)

    def __add__(self, other: "SegmentCounts") -> "SegmentCounts":
        return SegmentCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, raw: Any) -> "SegmentCounts":
        if not isinstance(raw, dict):
            raise InvalidSegmentResult(f"counts must be an object, got {raw!r}")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise InvalidSegmentResult(f"counts has unknown fields {sorted(unknown)}")
        return cls(**raw)


@dataclass(frozen=True)
class SegmentResult:
    chunk: int
    cursor_start: int
    cursor_end: int
    counts: SegmentCounts
    failed_key: str | None = None  # S3 key of a JSONL of this segment's failed records with reasons
    stopped: str | None = None  # why the syncer stopped before the chunk's end ("AuthenticationFailed: ...")
    windows: list[list[float]] | None = None  # requests sent per rate window: [[epoch s of its start, n], ...]

    def __post_init__(self) -> None:
        for name in ("chunk", "cursor_start", "cursor_end"):
            value = getattr(self, name)
            _checked(checks.count, name, value)
        if self.cursor_end < self.cursor_start:
            raise InvalidSegmentResult(f"cursor_end {self.cursor_end} is before cursor_start {self.cursor_start}")
        if self.failed_key is not None and (not isinstance(self.failed_key, str) or not self.failed_key):
            raise InvalidSegmentResult(f"failed_key must be an S3 key or null, got {self.failed_key!r}")
        if self.stopped is not None and not isinstance(self.stopped, str):
            raise InvalidSegmentResult(f"stopped must be a reason or null, got {self.stopped!r}")
        if self.windows is not None and not (isinstance(self.windows, list) and all(
                isinstance(w, list) and len(w) == 2 and all(isinstance(v, (int, float)) for v in w)
                for w in self.windows)):
            raise InvalidSegmentResult(f"windows must be [[window start, requests], ...] or null, got {self.windows!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> "SegmentResult":
        if not isinstance(raw, dict):
            raise InvalidSegmentResult(f"a segment result must be an object, got {type(raw).__name__}")
        try:
            return cls(raw["chunk"], raw["cursor_start"], raw["cursor_end"],
                       SegmentCounts.from_json(raw["counts"]), raw.get("failed_key"), raw.get("stopped"),
                       raw.get("windows"))
        except KeyError as missing:
            raise InvalidSegmentResult(f"a segment result needs {missing}") from None


def write_segment_result(s3: Any, bucket: str, prefix: str, result: SegmentResult) -> str:
    """Store ``result`` at its key under the run's output ``prefix``; returns the key."""
    key = layout.segment_key(prefix, result.chunk, result.cursor_start)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(result.to_json()).encode(), ContentType="application/json")
    return key


def read_segment_results(s3: Any, bucket: str, prefix: str) -> Iterator[SegmentResult]:
    """Every segment result under ``prefix`` (all pages of the listing), in key order.

    A result whose body disagrees with its key raises :class:`InvalidSegmentResult`.
    """
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=layout.results_prefix(prefix)):
        for item in page.get("Contents", ()):
            position = layout.parse_segment_key(item["Key"], prefix)
            if position is None:
                continue  # not a segment result (e.g. the syncer's failed-records files)
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            try:
                result = SegmentResult.from_json(json.loads(body))
            except ValueError as error:
                raise InvalidSegmentResult(f"{item['Key']}: {error}") from None
            if (result.chunk, result.cursor_start) != position:
                raise InvalidSegmentResult(
                    f"{item['Key']}: holds chunk {result.chunk} from cursor {result.cursor_start}, not what its key says"
                )
            yield result
