"""Lambda: run the chunked iterator's query and write its records to S3 as JSON Lines chunks.

Input: the whole execution input (see :mod:`step_lambdas.export`). Output:
``{"bucket", "prefix", "manifest_key", "chunks", "records", "contract_errors", "rows"}``
plus ``"items"`` (the manifest entries) when ``map_mode`` is ``INLINE``. Named errors:
``InvalidExportRequest``, ``FieldMappingError``, ``QueryRejected``, ``RedshiftSecretUnreadable``,
``QueryFailed``, ``QueryTooSlow``, ``ExportOutOfTime``, ``TooManyChunksForInline``.
"""

from step_lambdas.aws import client
from step_lambdas.contract.events import ExportRequest
from step_lambdas.export import run_export


def handler(event, context):
    request = ExportRequest.from_event(event)
    summary = run_export(request, client("redshift-data"), client("s3"), context.get_remaining_time_in_millis)
    return summary.to_output(with_items=request.map_mode == "INLINE")
