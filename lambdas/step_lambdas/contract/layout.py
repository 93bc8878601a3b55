"""Where one chunked-iterator run keeps its objects in S3, under the output ``prefix``::

    {prefix}/chunks/{index:06d}.jsonl                    records of one chunk (query executor)
    {prefix}/contract-errors.jsonl                       rows that broke the record contract
    {prefix}/manifest.json                               [{"index", "key", "records"}], written last
    {prefix}/results/{index:06d}/{cursor_start:08d}.json one chunk-syncer segment's counts
    {prefix}/failures.jsonl                              every failed record with its reasons (report)
    {prefix}/report.json                                 the totals (report)

Fixed-width numbers make S3's lexicographic listing the numeric order.
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"(\d{6})/(\d{8})\.json")


def normalize_prefix(prefix: str) -> str:
    """``"runs/2024-01-01/"`` and ``"runs/2024-01-01"`` name the same place; ``""`` is the bucket root."""
    if not isinstance(prefix, str):
        raise ValueError(f"output prefix must be a string, got {type(prefix).__name__}")
    return prefix.strip("/")


def _join(prefix: str, name: str) -> str:
    prefix = normalize_prefix(prefix)
    return f"{prefix}/{name}" if prefix else name


def chunks_prefix(prefix: str) -> str:
    return _join(prefix, "chunks/")


def chunk_key(prefix: str, index: int) -> str:
    return _join(prefix, f"chunks/{index:06d}.jsonl")


def chunk_index(key: str, prefix: str) -> int | None:
    """The index of a chunk key under ``prefix``; None for any other key."""
    match = re.fullmatch(re.escape(chunks_prefix(prefix)) + r"(\d{6})\.jsonl", key)
    return int(match.group(1)) if match else None


def manifest_key(prefix: str) -> str:
    return _join(prefix, "manifest.json")


def contract_errors_key(prefix: str) -> str:
    return _join(prefix, "contract-errors.jsonl")


def results_prefix(prefix: str) -> str:
    return _join(prefix, "results/")


def segment_key(prefix: str, chunk: int, cursor_start: int) -> str:
    return _join(prefix, f"results/{chunk:06d}/{cursor_start:08d}.json")


def parse_segment_key(key: str, prefix: str) -> tuple[int, int] | None:
    """``(chunk, cursor_start)`` of a segment result key under ``prefix``; None otherwise."""
    start = results_prefix(prefix)
    if not key.startswith(start):
        return None
    match = _SEGMENT.fullmatch(key[len(start):])
    return (int(match.group(1)), int(match.group(2))) if match else None


def failures_key(prefix: str) -> str:
    return _join(prefix, "failures.jsonl")


def report_key(prefix: str) -> str:
    return _join(prefix, "report.json")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
