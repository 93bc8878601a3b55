"""The deployed report Lambda on the local cloud, over a real export and syncer-style results."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from step_lambdas.contract import layout
from step_lambdas.contract.results import SegmentCounts, SegmentResult, write_segment_result


def test_report_totals_an_export_and_its_segment_results(cloud):
    table = f"report_leads_{uuid.uuid4().hex[:8]}"
    cloud.warehouse.execute(f"create table {table} as select i as external_id, "
                            "case when i = 3 then '' else 'Lead ' || i end as title from range(1, 11) t(i)")
    prefix = f"it-report/{uuid.uuid4().hex[:8]}"
    lam, s3, bucket = cloud.client("lambda"), cloud.client("s3"), cloud.endpoints.bucket
    execution_input = {
        "query": {"sql": f"select external_id, title from {table} order by external_id",
                  "database": cloud.endpoints.database, "cluster_identifier": cloud.endpoints.cluster_identifier},
        "target": {"external_id_field": "Lead ID"},
        "output": {"bucket": bucket, "prefix": prefix},
        "chunk_size": 5,
    }
    answer = lam.invoke(FunctionName="step-patterns-query-executor", Payload=json.dumps(execution_input))
    export = json.loads(answer["Payload"].read())
    assert (export["chunks"], export["records"], export["contract_errors"]) == (2, 9, 1), export

    # What the chunk syncer will write: chunk 0 in two segments (it ran short once), chunk 1 in one.
    failed_key = f"{prefix}/results/000001/failed-00000000.jsonl"
    s3.put_object(Bucket=bucket, Key=failed_key, Body=b'{"external_id": "9", "reasons": ["HTTP 400"]}\n')
    for result in (
        SegmentResult(0, 0, 3, SegmentCounts(records=3, created=3, requests=4, elapsed_s=1.5)),
        SegmentResult(0, 3, 5, SegmentCounts(records=2, created=1, unchanged=1, requests=1, responses_429=1, elapsed_s=2.0)),
        SegmentResult(1, 0, 4, SegmentCounts(records=4, updated=3, failed=1, requests=4, elapsed_s=1.0), failed_key),
    ):
        write_segment_result(s3, bucket, prefix, result)

    started = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    event = {"export": {k: export[k] for k in ("bucket", "prefix", "manifest_key", "chunks", "records", "contract_errors")},
             "output": execution_input["output"], "execution_name": "it-report", "execution_start_time": started}
    answer = lam.invoke(FunctionName="step-patterns-report", Payload=json.dumps(event))
    report = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") is None, report
    assert {k: report[k] for k in ("records", "created", "updated", "unchanged", "failed", "contract_errors",
                                   "requests", "responses_429", "chunks", "chunks_reported")} == {
        "records": 10, "created": 4, "updated": 3, "unchanged": 1, "failed": 2, "contract_errors": 1,
        "requests": 9, "responses_429": 1, "chunks": 2, "chunks_reported": 2}
    assert 20 <= report["elapsed_s"] < 60
    assert report["failures_location"] == f"s3://{bucket}/{prefix}/failures.jsonl"
    stored = json.loads(s3.get_object(Bucket=bucket, Key=layout.report_key(prefix))["Body"].read())
    assert stored == report
    failures = s3.get_object(Bucket=bucket, Key=layout.failures_key(prefix))["Body"].read().decode().splitlines()
    assert [(f["source"], f["external_id"]) for f in map(json.loads, failures)] == [("contract", "3"), ("sync", "9")]
