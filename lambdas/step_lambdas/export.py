"""The query executor's work: run the query, stream its rows into chunk objects, write the manifest.

The execution input it reads (``step_lambdas.contract.events.ExportRequest``; see
``step_patterns.asl.chunked_iterator``)::

    {"query": {StatementSpec fields: sql, database, cluster_identifier | workgroup_name,
               secret_arn, db_user, statement_name, parameters},
     "target": {"external_id_field", "field_mapping": {column: field}, "rate": {"requests", "per_seconds"}, ...},
     "output": {"bucket", "prefix"},
     "chunk_size": int | null,
     "map_mode": "DISTRIBUTED" | "INLINE"}          # optional, default DISTRIBUTED

Records are written in the order the query returns them, so a rerun of the same query
rewrites the same keys with the same content: the SQL should ``ORDER BY`` the external id.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from step_lambdas.contract import layout
from step_lambdas.contract.events import ExportRequest, InvalidExportRequest
from step_lambdas.chunking import DEFAULT_CHUNK_MAX_BYTES, ChunkWriter, ManifestEntry, RecordTooLarge, chunk_size_for_rate
from step_lambdas.fields import row_converter
from step_lambdas.pipedrive.records import printable
from step_lambdas.record_mapping import ContractCheck, RecordMapping
from step_lambdas.statement_results import result_pages, start_query, wait_for_statement

# Time kept for reading and writing once the statement finished: a third of the budget,
# at most two minutes.
MAX_RESERVE_MS = 120_000
# Stop with a named error rather than be killed mid-upload by the Lambda timeout.
STREAM_MARGIN_MS = 10_000
_SPOOL_BYTES = 1024 * 1024  # contract errors stay in memory up to 1 MiB, then go to /tmp
# Step Functions caps a state's payload at 256 KiB; the INLINE Map's items travel in it.
MAX_INLINE_ITEMS_BYTES = 200 * 1024


class TooManyChunksForInline(Exception):
    """The manifest entries would not fit in the state payload an INLINE Map iterates over."""


class ExportOutOfTime(Exception):
    """The result could not be written before the Lambda's timeout."""


def planned_chunk_size(request: ExportRequest) -> int:
    """Records per chunk: as asked, else what one chunk syncer can sync at its rate share."""
    if request.chunk_size is not None:
        return request.chunk_size
    return chunk_size_for_rate(request.rate.requests, request.rate.per_seconds)


@dataclass
class ExportSummary:
    bucket: str
    prefix: str
    manifest_key: str
    entries: list[ManifestEntry] = field(default_factory=list)
    rows: int = 0
    contract_errors: int = 0

    @property
    def records(self) -> int:
        return sum(e.records for e in self.entries)

    def to_output(self, with_items: bool) -> dict[str, Any]:
        """The Lambda's result; ``items`` (the manifest entries) only for an INLINE Map."""
        output = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "manifest_key": self.manifest_key,
            "chunks": len(self.entries),
            "records": self.records,
            "contract_errors": self.contract_errors,
            "rows": self.rows,
        }
        if with_items:
            output["items"] = [e.to_json() for e in self.entries]
            size = len(json.dumps(output["items"]))
            if size > MAX_INLINE_ITEMS_BYTES:
                raise TooManyChunksForInline(
                    f"{len(self.entries)} chunks make {size} bytes of items, over the {MAX_INLINE_ITEMS_BYTES} bytes "
                    "an INLINE Map can carry in its 256 KiB state payload; use map_mode DISTRIBUTED "
                    f"(the manifest is written at s3://{self.bucket}/{self.manifest_key}) or a larger chunk_size"
                )
        return output


def reserve_ms_for(budget_ms: int) -> int:
    return min(MAX_RESERVE_MS, budget_ms // 3)


def run_export(
    request: ExportRequest,
    redshift: Any,
    s3: Any,
    remaining_ms: Callable[[], int],
    *,
    chunk_max_bytes: int = DEFAULT_CHUNK_MAX_BYTES,
    sleep: Callable[[float], None] | None = None,
) -> ExportSummary:
    """Run the query and write chunks, contract errors and (last) the manifest; see the module doc."""
    chunk_size = planned_chunk_size(request)
    statement_id = start_query(redshift, request.statement)
    wait_kwargs = {"sleep": sleep} if sleep is not None else {}
    described = wait_for_statement(redshift, statement_id, remaining_ms, reserve_ms_for(remaining_ms()), **wait_kwargs)
    if not described["has_result_set"]:
        raise InvalidExportRequest(
            f"query: statement {statement_id} returned no result set; the query executor needs a SELECT "
            "(run other statements with the wait-state loop)"
        )
    return write_export(request, result_pages(redshift, statement_id), s3, remaining_ms, chunk_size, chunk_max_bytes)


def write_export(
    request: ExportRequest,
    pages: Any,
    s3: Any,
    remaining_ms: Callable[[], int],
    chunk_size: int,
    chunk_max_bytes: int = DEFAULT_CHUNK_MAX_BYTES,
) -> ExportSummary:
    """Stream GetStatementResult ``pages`` into the export under ``request.prefix``."""
    bucket, prefix = request.bucket, request.prefix
    summary = ExportSummary(bucket, prefix, layout.manifest_key(prefix))
    # Until the new manifest is written, no manifest: a half-rewritten export never looks complete.
    s3.delete_object(Bucket=bucket, Key=summary.manifest_key)
    writer = ChunkWriter(s3, bucket, prefix, chunk_size, chunk_max_bytes)
    check = ContractCheck(request.external_id_field)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as errors:

        def refuse(row: int, external_id: Any, reasons: list[str]) -> None:
            summary.contract_errors += 1
            if isinstance(external_id, str):  # may hold a lone surrogate, the reason it was refused
                external_id = printable(external_id)
            line = {"row": row, "external_id": external_id, "reasons": reasons}
            errors.write(json.dumps(line, ensure_ascii=False, default=str).encode() + b"\n")

        mapping = convert = None
        for page in pages:
            if remaining_ms() < STREAM_MARGIN_MS:
                raise ExportOutOfTime(
                    f"{summary.rows} rows written when the Lambda's time ran out; "
                    "select fewer rows per execution (e.g. one data interval) or build a smaller table first"
                )
            if mapping is None and page.get("ColumnMetadata"):
                columns = page["ColumnMetadata"]
                mapping = RecordMapping.build([c.get("name") or c.get("label") for c in columns], request.field_mapping)
                convert = row_converter(columns)
            for raw in page.get("Records", ()):
                summary.rows += 1
                _export_row(summary.rows, raw, mapping, convert, check, writer, refuse)
        writer.flush()
        summary.entries = writer.entries
        errors.seek(0)
        s3.put_object(Bucket=bucket, Key=layout.contract_errors_key(prefix), Body=errors,
                      ContentType="application/x-ndjson")
    manifest = json.dumps([e.to_json() for e in summary.entries], separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=summary.manifest_key, Body=manifest, ContentType="application/json")
    _delete_stale_chunks(s3, bucket, prefix, len(summary.entries))
    return summary


def _export_row(row, raw, mapping, convert, check, writer, refuse) -> None:
    if mapping is None:
        raise InvalidExportRequest("the query result has records but no ColumnMetadata; cannot name the fields")
    try:
        record = mapping.record(convert(raw))
    except ValueError as error:  # a value the converter cannot read
        refuse(row, None, [str(error)])
        return
    external_id = record.get("external_id")
    reasons = check.reasons(record, row)
    if reasons:
        refuse(row, external_id, reasons)
        return
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        refuse(row, external_id, ["record: expected finite numbers, got NaN or Infinity"])
        return
    try:
        writer.add(line.encode() + b"\n")
    except RecordTooLarge as error:
        refuse(row, external_id, [str(error)])


def _delete_stale_chunks(s3: Any, bucket: str, prefix: str, count: int) -> None:
    """A rerun that makes fewer chunks removes the old ones past the end (after the manifest)."""
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.chunks_prefix(prefix)):
        for item in page.get("Contents", ()):
            index = layout.chunk_index(item["Key"], prefix)
            if index is not None and index >= count:
                stale.append({"Key": item["Key"]})
    for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start:start + 1000], "Quiet": True})
