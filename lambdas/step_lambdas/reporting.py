"""The chunked iterator's report: totals over the chunk syncers' segment results.

``records`` is every row the query returned (records exported + contract errors), and
``failed`` counts contract errors too, so on a complete run
``records == created + updated + unchanged + failed``. ``failures_location`` is one JSON
Lines object with every failed record and its reasons: contract errors
(``"source": "contract"``, with the row number), the syncers' failures
(``"source": "sync"``, with the chunk index), then one line per chunk whose records were
not synced (its syncer failed for good: a tolerated Map failure, a stop-the-run error),
counted in ``not_synced`` and in ``failed``, with the syncer's reason when it gave one.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import ClientError

from step_lambdas.contract import layout
from step_lambdas.contract.events import InvalidReportRequest, ReportRequest
from step_lambdas.contract.results import SegmentCounts, SegmentResult, read_segment_results

_SPOOL_BYTES = 1024 * 1024


class ChunksNotSynced(RuntimeError):
    """The Map over the chunks failed: some records never reached Pipedrive (the message says how many and why)."""


@dataclass(frozen=True)
class ChunkTotals:
    counts: SegmentCounts
    complete: bool  # the segment chain reaches the chunk's last record
    failed_keys: tuple[str, ...]
    cursor: int = 0  # first record of the chunk no segment on the chain handled
    stopped: str | None = None  # why the last segment on the chain stopped early, if it said


def chunk_totals(expected_records: int, segments: Iterable[SegmentResult]) -> ChunkTotals:
    """Follow one chunk's segments from cursor 0 along ``cursor_end``; sum those on the chain."""
    by_start = {s.cursor_start: s for s in segments}
    counts, failed_keys, cursor, stopped = SegmentCounts(), [], 0, None
    while cursor in by_start:
        segment = by_start.pop(cursor)
        counts += segment.counts
        stopped = segment.stopped
        if segment.failed_key:
            failed_keys.append(segment.failed_key)
        if segment.cursor_end == cursor:  # no progress: the chain cannot continue
            break
        cursor = segment.cursor_end
    return ChunkTotals(counts, cursor >= expected_records, tuple(failed_keys), cursor, stopped)


def why_not_synced(totals: ChunkTotals) -> str:
    if totals.stopped:
        return totals.stopped
    return "no chunk syncer finished it (it failed or never ran: see the Map's failed items)"


def not_synced_line(index: int, records: int, totals: ChunkTotals) -> dict[str, Any]:
    """The failures.jsonl line of a chunk whose records from ``totals.cursor`` on were not synced."""
    return {"source": "sync", "chunk": index, "records_from": totals.cursor, "records_to": records,
            "not_synced": records - totals.cursor,
            "reasons": [f"records {totals.cursor} to {records - 1} of chunk {index} were not synced: "
                        f"{why_not_synced(totals)}"]}


def read_manifest(s3: Any, bucket: str, key: str) -> dict[int, int]:
    """``{chunk index: records}`` from the export's manifest."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        raise InvalidReportRequest(f"no manifest at {layout.s3_uri(bucket, key)}: the export did not finish") from None
    entries = json.loads(body)
    return {int(e["index"]): int(e["records"]) for e in entries}


def build_report(request: ReportRequest, manifest: dict[int, int], segments: Iterable[SegmentResult],
                 now: dt.datetime) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """The report, and the (chunk, failed_key) objects whose records count as failed."""
    by_chunk: dict[int, list[SegmentResult]] = {}
    for segment in segments:
        if segment.chunk in manifest:  # results of chunks this export does not have are stale
            by_chunk.setdefault(segment.chunk, []).append(segment)
    total, reported, failed_keys, not_synced, reasons = SegmentCounts(), 0, [], [], set()
    for index, records in sorted(manifest.items()):
        totals = chunk_totals(records, by_chunk.get(index, ()))
        total += totals.counts
        reported += totals.complete
        failed_keys.extend((index, key) for key in totals.failed_keys)
        if not totals.complete:  # a chunk that failed for good (a tolerated Map failure, a stop)
            not_synced.append(not_synced_line(index, records, totals))
            reasons.add(why_not_synced(totals))
    missing = sum(line["not_synced"] for line in not_synced)
    elapsed_s = max((now - request.started_at).total_seconds(), 0.0)
    report = {
        "records": request.records + request.contract_errors,
        "created": total.created,
        "updated": total.updated,
        "unchanged": total.unchanged,
        # never-synced records count as failed: records == created + updated + unchanged + failed
        "failed": total.failed + request.contract_errors + missing,
        "contract_errors": request.contract_errors,
        "not_synced": missing,
        "not_synced_because": sorted(reasons)[:5],  # distinct reasons, the full list is in failures
        "requests": total.requests,
        "responses_429": total.responses_429,
        "chunks": len(manifest),
        "chunks_reported": reported,
        "elapsed_s": round(elapsed_s, 3),
        "requests_per_second": round(total.requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        "results_prefix": layout.s3_uri(request.bucket, layout.results_prefix(request.prefix)),
        "failures_location": layout.s3_uri(request.bucket, layout.failures_key(request.prefix)),
    }
    return report, failed_keys, not_synced


def write_failures(s3: Any, request: ReportRequest, failed_keys: list[tuple[int, str]],
                   not_synced: list[dict[str, Any]] = ()) -> str:
    """Gather contract errors and the syncers' failed records into one JSON Lines object."""
    key = layout.failures_key(request.prefix)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as out:
        sources: list[tuple[str, dict[str, Any]]] = []
        if request.contract_errors:
            sources.append((layout.contract_errors_key(request.prefix), {"source": "contract"}))
        sources += [(failed_key, {"source": "sync", "chunk": index}) for index, failed_key in failed_keys]
        for source_key, tags in sources:
            body = s3.get_object(Bucket=request.bucket, Key=source_key)["Body"]
            for line in body.iter_lines():
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    item = {"line": line.decode("utf-8", "replace")}
                item = item if isinstance(item, dict) else {"value": item}
                out.write(json.dumps({**item, **tags}, ensure_ascii=False).encode() + b"\n")
        for line in not_synced:
            out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        out.seek(0)
        s3.put_object(Bucket=request.bucket, Key=key, Body=out, ContentType="application/x-ndjson")
    return key


def make_report(s3: Any, request: ReportRequest, now: dt.datetime) -> dict[str, Any]:
    """Read the manifest and segment results, write failures.jsonl and report.json, return the report."""
    manifest = read_manifest(s3, request.bucket, request.manifest_key)
    if len(manifest) != request.chunks:
        raise InvalidReportRequest(
            f"the manifest lists {len(manifest)} chunks but the export says {request.chunks}: "
            "was the same prefix exported again meanwhile?"
        )
    segments = read_segment_results(s3, request.bucket, request.prefix)
    report, failed_keys, not_synced = build_report(request, manifest, segments, now)
    write_failures(s3, request, failed_keys, not_synced)
    s3.put_object(Bucket=request.bucket, Key=layout.report_key(request.prefix),
                  Body=json.dumps(report, indent=2).encode(), ContentType="application/json")
    return report
