"""The report Lambda and the segment-result schema the chunk syncer writes, with a fake S3."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from step_lambdas.contract import layout
from step_lambdas.handlers import report as report_handler
from step_lambdas.contract.events import InvalidReportRequest, ReportRequest
from step_lambdas.reporting import chunk_totals, make_report
from step_lambdas.contract.results import (
    InvalidSegmentResult,
    SegmentCounts,
    SegmentResult,
    read_segment_results,
    write_segment_result,
)
from test_query_executor_fakes import FakeS3

BUCKET, PREFIX = "exports", "runs/2024-01-05"
START = "2024-01-05T10:00:00.000Z"
NOW = dt.datetime(2024, 1, 5, 10, 2, 0, tzinfo=dt.timezone.utc)  # 120 s later


def export_of(s3, chunk_records, contract_errors=0):
    manifest = [{"index": i, "key": layout.chunk_key(PREFIX, i), "records": n} for i, n in enumerate(chunk_records)]
    s3.put_object(Bucket=BUCKET, Key=layout.manifest_key(PREFIX), Body=json.dumps(manifest).encode())
    errors = "".join(json.dumps({"row": r, "external_id": str(r), "reasons": ["title: missing"]}) + "\n"
                     for r in range(1, contract_errors + 1))
    s3.put_object(Bucket=BUCKET, Key=layout.contract_errors_key(PREFIX), Body=errors.encode())
    return {"bucket": BUCKET, "prefix": PREFIX, "manifest_key": layout.manifest_key(PREFIX),
            "chunks": len(chunk_records), "records": sum(chunk_records), "contract_errors": contract_errors}


def event_of(export):
    return {"export": export, "output": {"bucket": BUCKET, "prefix": PREFIX + "/"},
            "execution_name": "daily-2024-01-05", "execution_start_time": START}


def segment(chunk, start, end, created=0, updated=0, unchanged=0, failed=0, requests=0, r429=0, elapsed=1.0, failed_key=None):
    counts = SegmentCounts(records=end - start, created=created, updated=updated, unchanged=unchanged, failed=failed,
                           requests=requests, responses_429=r429, elapsed_s=elapsed)
    return SegmentResult(chunk, start, end, counts, failed_key)


def report_for(s3, export):
    return make_report(s3, ReportRequest.from_event(event_of(export)), NOW)


def test_write_segment_result_puts_it_at_its_key_and_reads_back_the_same():
    s3 = FakeS3()
    result = segment(3, 120, 200, created=50, updated=30, requests=80, failed_key="runs/x/failed.jsonl")
    key = write_segment_result(s3, BUCKET, PREFIX + "/", result)
    assert key == "runs/2024-01-05/results/000003/00000120.json"
    assert json.loads(s3.text(BUCKET, key)) == {
        "chunk": 3, "cursor_start": 120, "cursor_end": 200, "failed_key": "runs/x/failed.jsonl", "stopped": None,
        "windows": None,
        "counts": {"records": 80, "created": 50, "updated": 30, "unchanged": 0, "failed": 0, "requests": 80,
                   "responses_429": 0, "elapsed_s": 1.0}}
    assert list(read_segment_results(s3, BUCKET, PREFIX)) == [result]


@pytest.mark.parametrize("make, message", [
    (lambda: SegmentCounts(created=-1), "counts.created must be a non-negative integer"),
    (lambda: SegmentCounts(requests=1.5), "counts.requests must be a non-negative integer"),
    (lambda: SegmentResult(0, 10, 5, SegmentCounts()), "cursor_end 5 is before cursor_start 10"),
    (lambda: SegmentResult.from_json({"chunk": 0, "cursor_start": 0, "cursor_end": 1}), "needs 'counts'"),
    (lambda: SegmentCounts.from_json({"created": 1, "skipped": 2}), "unknown fields \\['skipped'\\]"),
])
def test_malformed_segment_results_are_refused_with_the_reason(make, message):
    with pytest.raises(InvalidSegmentResult, match=message):
        make()


def test_a_result_whose_body_disagrees_with_its_key_is_refused():
    s3 = FakeS3()
    s3.put_object(Bucket=BUCKET, Key=layout.segment_key(PREFIX, 1, 0), Body=json.dumps(segment(2, 0, 5).to_json()).encode())
    with pytest.raises(InvalidSegmentResult, match="holds chunk 2 from cursor 0, not what its key says"):
        list(read_segment_results(s3, BUCKET, PREFIX))


def test_chunk_totals_follow_the_cursor_chain_and_ignore_segments_of_an_abandoned_attempt():
    segments = [
        segment(0, 0, 400, created=400),      # attempt 2 redid the chunk from 0 in one go ...
        segment(0, 250, 400, created=150),    # ... so attempt 1's second segment is off the chain
        segment(0, 400, 1000, updated=600),
    ]
    totals = chunk_totals(1000, segments)
    assert (totals.counts.created, totals.counts.updated, totals.complete) == (400, 600, True)
    assert chunk_totals(1000, segments[:2]).complete is False
    assert chunk_totals(10, [segment(0, 0, 0)]).complete is False  # no progress ends the chain


def test_report_sums_every_chunk_adds_contract_errors_as_failures_and_writes_report_json():
    s3 = FakeS3(page_size=2)  # listing spans several pages
    export = export_of(s3, [100, 100, 50], contract_errors=2)
    results = [
        segment(0, 0, 60, created=60, requests=62, r429=0, elapsed=10),
        segment(0, 60, 100, updated=39, failed=1, requests=40, elapsed=5, failed_key=f"{PREFIX}/results/000000/f.jsonl"),
        segment(1, 0, 100, unchanged=100, requests=1, elapsed=1),
        segment(2, 0, 50, created=20, updated=30, requests=55, r429=1, elapsed=7),
    ]
    for r in results:
        write_segment_result(s3, BUCKET, PREFIX, r)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/results/000000/f.jsonl",
                  Body=b'{"index": 77, "external_id": "77", "reasons": ["HTTP 400: bad stage_id"]}\n')
    report = report_for(s3, export)
    assert report == {
        "records": 252, "created": 80, "updated": 69, "unchanged": 100, "failed": 3, "contract_errors": 2,
        "not_synced": 0, "not_synced_because": [], "requests": 158, "responses_429": 1, "chunks": 3, "chunks_reported": 3, "elapsed_s": 120.0,
        "requests_per_second": round(158 / 120, 3),
        "results_prefix": f"s3://{BUCKET}/{PREFIX}/results/",
        "failures_location": f"s3://{BUCKET}/{PREFIX}/failures.jsonl",
    }
    assert report["records"] == report["created"] + report["updated"] + report["unchanged"] + report["failed"]
    assert json.loads(s3.text(BUCKET, layout.report_key(PREFIX))) == report
    failures = [json.loads(line) for line in s3.text(BUCKET, layout.failures_key(PREFIX)).splitlines()]
    assert [(f["source"], f.get("row"), f.get("chunk"), f["external_id"]) for f in failures] == [
        ("contract", 1, None, "1"), ("contract", 2, None, "2"), ("sync", None, 0, "77")]


def test_records_no_syncer_finished_count_as_failed_with_the_reason_never_silently():
    s3 = FakeS3()
    export = export_of(s3, [10, 10, 10])
    write_segment_result(s3, BUCKET, PREFIX, segment(0, 0, 10, created=10, requests=10))
    stopped = SegmentResult(1, 0, 4, SegmentCounts(records=4, created=4, requests=5),
                            stopped="AuthenticationFailed: Pipedrive refused the API token")
    write_segment_result(s3, BUCKET, PREFIX, stopped)
    write_segment_result(s3, BUCKET, PREFIX, segment(7, 0, 4, created=4, requests=4))  # not in this export
    # chunk 2: its syncer failed before writing anything (a crash past its retries, a tolerated Map failure)
    report = report_for(s3, export)
    assert (report["chunks"], report["chunks_reported"], report["created"]) == (3, 1, 14)
    assert (report["not_synced"], report["failed"]) == (16, 16)
    assert report["records"] == report["created"] + report["updated"] + report["unchanged"] + report["failed"]
    assert report["not_synced_because"] == [
        "AuthenticationFailed: Pipedrive refused the API token",
        "no chunk syncer finished it (it failed or never ran: see the Map's failed items)",
    ]
    failures = [json.loads(line) for line in s3.text(BUCKET, layout.failures_key(PREFIX)).splitlines()]
    assert [(f["chunk"], f["records_from"], f["not_synced"]) for f in failures] == [(1, 4, 6), (2, 0, 10)]
    assert failures[0]["reasons"] == [
        "records 4 to 9 of chunk 1 were not synced: AuthenticationFailed: Pipedrive refused the API token"]


def test_an_export_with_no_rows_reports_zeros():
    s3 = FakeS3()
    report = report_for(s3, export_of(s3, []))
    assert {k: report[k] for k in ("records", "created", "failed", "chunks", "chunks_reported", "requests_per_second")} == {
        "records": 0, "created": 0, "failed": 0, "chunks": 0, "chunks_reported": 0, "requests_per_second": 0.0}
    assert s3.text(BUCKET, layout.failures_key(PREFIX)) == ""


def test_a_missing_manifest_is_a_clear_error():
    with pytest.raises(InvalidReportRequest, match="no manifest at s3://exports/runs/2024-01-05/manifest.json"):
        report_for(FakeS3(), {"bucket": BUCKET, "prefix": PREFIX, "manifest_key": layout.manifest_key(PREFIX),
                              "chunks": 1, "records": 1, "contract_errors": 0})


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("export"), "'export' must be the query executor's result"),
    (lambda e: e["export"].update(records=-1), "export.records must be a non-negative integer"),
    (lambda e: e.update(execution_start_time="yesterday"), "execution_start_time must be an ISO 8601 timestamp"),
])
def test_bad_report_input_says_what_is_wrong(change, message):
    event = event_of({"bucket": BUCKET, "prefix": PREFIX, "manifest_key": "m", "chunks": 0, "records": 0,
                      "contract_errors": 0})
    change(event)
    with pytest.raises(InvalidReportRequest, match=message):
        ReportRequest.from_event(event)


def test_handler_reports_from_the_time_the_execution_started(monkeypatch):
    s3 = FakeS3()
    export = export_of(s3, [5])
    write_segment_result(s3, BUCKET, PREFIX, segment(0, 0, 5, created=5, requests=5))
    monkeypatch.setattr(report_handler, "client", lambda service: s3)
    event = event_of(export)
    event["execution_start_time"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)).isoformat()
    report = report_handler.handler(event, None)
    assert report["created"] == 5 and 30 <= report["elapsed_s"] < 60


def test_after_a_failed_map_the_report_is_written_then_the_run_fails_naming_what_never_synced(monkeypatch):
    from step_lambdas.reporting import ChunksNotSynced

    s3 = FakeS3()
    export = export_of(s3, [10, 10])
    write_segment_result(s3, BUCKET, PREFIX, segment(0, 0, 10, created=10, requests=10))
    stopped = SegmentResult(1, 0, 0, SegmentCounts(requests=1), stopped="AuthenticationFailed: the API token was refused")
    write_segment_result(s3, BUCKET, PREFIX, stopped)
    monkeypatch.setattr(report_handler, "client", lambda service: s3)
    lambda_error = json.dumps({"errorType": "AuthenticationFailed", "errorMessage": "the API token was refused",
                               "stackTrace": ["..."]})
    event = {**event_of(export), "sync_error": {"Error": "AuthenticationFailed", "Cause": lambda_error}}
    with pytest.raises(ChunksNotSynced) as failed:
        report_handler.handler(event, None)
    assert str(failed.value) == (
        "10 of 20 records not synced (AuthenticationFailed: the API token was refused); "
        f"report: s3://{BUCKET}/{PREFIX}/report.json")
    assert json.loads(s3.text(BUCKET, layout.report_key(PREFIX)))["not_synced"] == 10


def test_a_report_that_cannot_be_made_keeps_the_map_s_error():
    from step_lambdas.reporting import ChunksNotSynced

    event = {"export": "nonsense", "sync_error": {"Error": "States.ExceedToleratedFailureThreshold",
                                                  "Cause": "The specified tolerated failure threshold was exceeded"}}
    with pytest.raises(ChunksNotSynced, match="syncing the chunks failed: States.ExceedToleratedFailureThreshold: "
                                              "The specified tolerated failure threshold was exceeded \\(and no report"):
        report_handler.handler(event, None)
