"""The query executor's pure parts with fake clients: fields, mapping, chunks, manifest, errors."""

from __future__ import annotations

import json

import pytest

from step_lambdas import chunking
from step_lambdas.contract import layout
from step_lambdas.chunking import ChunkWriter, RecordTooLarge, chunk_size_for_rate
from step_lambdas.contract.events import ExportRequest, InvalidExportRequest
from step_lambdas.export import ExportOutOfTime, planned_chunk_size, run_export
from step_lambdas.fields import converter_for, row_converter
from step_lambdas.handlers import query_executor
from step_lambdas.record_mapping import ContractCheck, FieldMappingError, RecordMapping
from step_lambdas.statement_results import QueryFailed, QueryTooSlow
from test_query_executor_fakes import FakeContext, FakeRedshiftData, FakeS3, column

BUCKET = "exports"
COLUMNS = [column("lead_id", "int8"), column("company", "varchar"), column("amount", "numeric"),
           column("hot", "bool"), column("score", "float8"), column("created", "timestamp")]
MAPPING = {"lead_id": "external_id", "company": "title", "amount": "value", "hot": "Hot lead",
           "score": "custom_fields.Score", "created": "add_time"}


def lead(i, **overrides):
    row = {"lead_id": i, "company": f"Lead {i}", "amount": f"{i}.50", "hot": i % 2 == 0, "score": i / 4,
           "created": "2024-01-05 10:00:00"}
    row.update(overrides)
    return [row[c["name"]] for c in COLUMNS]


def event(**overrides):
    base = {
        "query": {"sql": "select * from leads where day = :day order by lead_id", "database": "dev",
                  "cluster_identifier": "c1", "parameters": {"day": "2024-01-05"}},
        "target": {"external_id_field": "Lead ID", "field_mapping": MAPPING, "rate": {"requests": 20, "per_seconds": 2}},
        "output": {"bucket": BUCKET, "prefix": "runs/2024-01-05/"},
        "chunk_size": 4,
    }
    base.update(overrides)
    return base


def export(rows, s3=None, clock=None, redshift=None, **event_overrides):
    s3 = s3 if s3 is not None else FakeS3()
    redshift = redshift or FakeRedshiftData(COLUMNS, rows)
    context = clock or FakeContext()
    summary = run_export(ExportRequest.from_event(event(**event_overrides)), redshift, s3,
                         context.get_remaining_time_in_millis, sleep=lambda s: None)
    return summary, s3, redshift


def lines(s3, key):
    return [json.loads(line) for line in s3.text(BUCKET, key).splitlines()]


# -- typed fields -> JSON values ---------------------------------------------------------

@pytest.mark.parametrize("type_name, field, expected", [
    ("int8", {"longValue": 42}, 42),
    ("float8", {"doubleValue": 0.25}, 0.25),
    ("bool", {"booleanValue": False}, False),
    ("varchar", {"stringValue": "12.50"}, "12.50"),  # text stays text, even when it looks numeric
    ("numeric", {"stringValue": "12.50"}, 12.5),
    ("numeric", {"stringValue": "1234567890123"}, 1234567890123),
    ("numeric", {"stringValue": "-0.001"}, -0.001),
    ("date", {"stringValue": "2024-01-05"}, "2024-01-05"),
    ("timestamp", {"stringValue": "2024-01-05 10:00:00"}, "2024-01-05T10:00:00Z"),
    ("timestamp", {"stringValue": "2024-01-05 10:00:00.250000"}, "2024-01-05T10:00:00.250000Z"),
    ("timestamptz", {"stringValue": "2024-01-05 12:00:00+02"}, "2024-01-05T10:00:00Z"),
    ("super", {"stringValue": '{"a": [1, 2]}'}, {"a": [1, 2]}),
    ("super", {"stringValue": "plain text"}, "plain text"),
    ("numeric", {"isNull": True}, None),
    ("bool", {"isNull": True}, None),
    ("varchar", {"isNull": True}, None),
])
def test_typed_fields_become_json_values(type_name, field, expected):
    value = converter_for(column("c", type_name))(field)
    assert value == expected and type(value) is type(expected)


def test_an_unreadable_value_names_its_column():
    convert = row_converter([column("id", "int8"), column("closed", "timestamp")])
    with pytest.raises(ValueError, match="column 'closed'"):
        convert([{"longValue": 1}, {"stringValue": "not a time"}])


# -- mapping ----------------------------------------------------------------------------

def test_mapping_puts_deal_fields_on_top_and_others_under_custom_fields():
    mapping = RecordMapping.build([c["name"] for c in COLUMNS], MAPPING)
    record = mapping.record([7, "Acme", 12.5, True, 1.75, "2024-01-05T10:00:00Z"])
    assert record == {"external_id": "7", "title": "Acme", "value": 12.5, "add_time": "2024-01-05T10:00:00Z",
                      "custom_fields": {"Hot lead": True, "Score": 1.75}}


def test_columns_named_like_deal_fields_need_no_mapping_and_a_super_column_gives_custom_fields():
    mapping = RecordMapping.build(["external_id", "title", "status", "custom_fields"], None)
    record = mapping.record(["a-1", "Acme", "open", {"Region": "EU"}])
    assert record == {"external_id": "a-1", "title": "Acme", "status": "open", "custom_fields": {"Region": "EU"}}


@pytest.mark.parametrize("columns, mapping, message", [
    (["id", "name"], {"id": "external_id", "nme": "title"}, "mapped columns not in the query result: 'nme'"),
    (["id", "name", "secret"], {"id": "external_id", "name": "title"}, "columns 'secret' are neither mapped"),
    (["id", "a", "b"], {"id": "external_id", "a": "title", "b": "title"}, "columns 'a' and 'b' both map to 'title'"),
    (["id", "amount"], {"id": "external_id", "amount": "value"}, "no column gives 'title'"),
    (["name"], {"name": "title"}, "no column gives 'external_id'"),
])
def test_a_mapping_that_cannot_fit_the_columns_is_refused_up_front(columns, mapping, message):
    with pytest.raises(FieldMappingError, match=message):
        RecordMapping.build(columns, mapping)


def test_contract_check_gives_every_reason_without_a_pipedrive_catalog():
    check = ContractCheck("Lead ID")
    assert check.reasons({"external_id": "1", "title": "Acme", "custom_fields": {"Anything": 1}}, 1) == []
    reasons = check.reasons({"external_id": "", "title": None, "value": "12", "custom_fields": {"Lead ID": "x"}}, 2)
    assert any(r.startswith("external_id:") for r in reasons)
    assert any(r.startswith("title:") for r in reasons)
    assert any(r.startswith("value: expected number") for r in reasons)
    assert any(r.startswith("custom_fields.Lead ID") for r in reasons)


# -- chunk size -------------------------------------------------------------------------

def test_chunk_size_from_the_rate_follows_the_formula():
    # 20 requests / 2 s for (900 - 60) s at 80 %: 10 * 840 * 0.8
    assert chunk_size_for_rate(20, 2, timeout_s=900) == 6720
    assert chunk_size_for_rate(80, 2.0, timeout_s=900) == 26880
    assert chunk_size_for_rate(1, 10, timeout_s=61) == 1  # never zero
    assert chunk_size_for_rate(20, 2) == chunk_size_for_rate(20, 2, timeout_s=chunking.syncer_timeout_s())


def test_chunk_size_follows_the_syncer_timeout_in_the_bundle(monkeypatch):
    from step_lambdas.manifest import FUNCTIONS, FunctionSpec

    monkeypatch.setitem(FUNCTIONS, "chunk-syncer", FunctionSpec("x.handler", 300, 512, "syncer"))
    assert chunk_size_for_rate(20, 2) == 10 * 240 * 8 // 10


@pytest.mark.parametrize("requests, per_seconds", [(0, 2), (True, 2), (20, 0), (20, -1), ("20", 2)])
def test_a_bad_rate_is_refused(requests, per_seconds):
    with pytest.raises(ValueError, match="rate"):
        chunk_size_for_rate(requests, per_seconds)


def test_no_chunk_size_means_computed_from_the_rate():
    request = ExportRequest.from_event(event(chunk_size=None))
    assert planned_chunk_size(request) == chunk_size_for_rate(20, 2)


# -- chunk boundaries -------------------------------------------------------------------

@pytest.mark.parametrize("rows, size, expected", [
    (0, 4, []), (1, 4, [1]), (4, 4, [4]), (5, 4, [4, 1]), (8, 4, [4, 4]), (9, 4, [4, 4, 1]), (3, 1, [1, 1, 1]),
])
def test_records_fill_chunks_of_the_chunk_size_in_order(rows, size, expected):
    summary, s3, _ = export([lead(i) for i in range(1, rows + 1)], chunk_size=size)
    assert [e.records for e in summary.entries] == expected
    ids = [r["external_id"] for e in summary.entries for r in lines(s3, e.key)]
    assert ids == [str(i) for i in range(1, rows + 1)]
    assert [e.key for e in summary.entries] == [f"runs/2024-01-05/chunks/{i:06d}.jsonl" for i in range(len(expected))]


def test_the_byte_budget_closes_a_chunk_before_it_grows_past_it():
    s3 = FakeS3()
    writer = ChunkWriter(s3, BUCKET, "p", max_records=100, max_bytes=25)
    for line in (b"a" * 10 + b"\n", b"b" * 10 + b"\n", b"c" * 10 + b"\n"):
        writer.add(line)
    writer.flush()
    assert [e.records for e in writer.entries] == [2, 1]
    assert all(len(s3.objects[(BUCKET, e.key)]) <= 25 for e in writer.entries)
    with pytest.raises(RecordTooLarge, match="26 bytes as JSON, over the chunk budget of 25 bytes"):
        writer.add(b"x" * 25 + b"\n")


def test_a_record_over_the_byte_budget_is_a_contract_error_not_a_crash():
    s3 = FakeS3()
    rows = [lead(1), lead(2, company="x" * 250), lead(3)]  # a title Pipedrive takes (<= 255)
    request = ExportRequest.from_event(event())
    redshift = FakeRedshiftData(COLUMNS, rows)
    summary = run_export(request, redshift, s3, FakeContext().get_remaining_time_in_millis,
                         chunk_max_bytes=300, sleep=lambda s: None)
    assert (summary.rows, summary.records, summary.contract_errors) == (3, 2, 1)
    [error] = lines(s3, "runs/2024-01-05/contract-errors.jsonl")
    assert error["row"] == 2 and error["external_id"] == "2"
    assert "over the chunk budget of 300 bytes" in error["reasons"][0]


# -- contract errors, manifest, output ----------------------------------------------------

def test_contract_errors_are_collected_with_row_numbers_and_the_rest_go_on():
    rows = [lead(1), lead(2, company=None), lead(3), lead(4, created="yesterday"), lead(5, hot="no")]
    summary, s3, _ = export(rows)
    assert (summary.rows, summary.records, summary.contract_errors) == (5, 3, 2)
    errors = lines(s3, "runs/2024-01-05/contract-errors.jsonl")
    assert [(e["row"], e["external_id"]) for e in errors] == [(2, "2"), (4, None)]
    assert errors[0]["reasons"] == ["title: expected non-empty string, got null"]
    assert "column 'created'" in errors[1]["reasons"][0]
    # a custom field's type is the syncer's to check (it has the catalog): record 5 goes on
    assert [r["external_id"] for e in summary.entries for r in lines(s3, e.key)] == ["1", "3", "5"]


def test_non_finite_numbers_are_a_contract_error():
    summary, s3, _ = export([lead(1, score=float("nan")), lead(2)])
    assert summary.contract_errors == 1
    assert lines(s3, "runs/2024-01-05/contract-errors.jsonl")[0]["reasons"] == [
        "record: expected finite numbers, got NaN or Infinity"]


def test_manifest_is_written_last_and_lists_every_chunk():
    summary, s3, _ = export([lead(i) for i in range(1, 10)])
    puts = s3.puts()
    assert puts[-1] == "runs/2024-01-05/manifest.json"
    assert puts[:-1] == [e.key for e in summary.entries] + ["runs/2024-01-05/contract-errors.jsonl"]
    assert json.loads(s3.text(BUCKET, "runs/2024-01-05/manifest.json")) == [
        {"index": 0, "key": "runs/2024-01-05/chunks/000000.jsonl", "records": 4},
        {"index": 1, "key": "runs/2024-01-05/chunks/000001.jsonl", "records": 4},
        {"index": 2, "key": "runs/2024-01-05/chunks/000002.jsonl", "records": 1},
    ]


def test_a_rerun_drops_the_old_manifest_first_rewrites_the_same_keys_and_removes_stale_chunks():
    s3 = FakeS3()
    export([lead(i) for i in range(1, 10)], s3=s3)  # 3 chunks
    first = dict(s3.objects)
    s3.calls.clear()
    summary, _, _ = export([lead(i) for i in range(1, 6)], s3=s3)  # 2 chunks now
    assert s3.calls[0] == ("delete", "runs/2024-01-05/manifest.json")
    assert s3.objects[(BUCKET, summary.entries[0].key)] == first[(BUCKET, summary.entries[0].key)]
    assert (BUCKET, "runs/2024-01-05/chunks/000002.jsonl") not in s3.objects
    stale_delete = s3.calls.index(("delete", "runs/2024-01-05/chunks/000002.jsonl"))
    assert stale_delete > s3.calls.index(("put", "runs/2024-01-05/manifest.json"))


def test_no_rows_is_a_success_with_no_chunks_and_an_empty_manifest():
    summary, s3, _ = export([])
    assert summary.to_output(with_items=True) == {
        "bucket": BUCKET, "prefix": "runs/2024-01-05", "manifest_key": "runs/2024-01-05/manifest.json",
        "chunks": 0, "records": 0, "contract_errors": 0, "rows": 0, "items": []}
    assert s3.text(BUCKET, "runs/2024-01-05/manifest.json") == "[]"
    assert s3.text(BUCKET, "runs/2024-01-05/contract-errors.jsonl") == ""


def test_memory_holds_one_page_and_one_chunk_pages_are_pulled_as_chunks_fill():
    """Chunks are uploaded while the result is still being paged, not after."""
    s3 = FakeS3()
    redshift = FakeRedshiftData(COLUMNS, [lead(i) for i in range(1, 13)], page_size=2)
    request = ExportRequest.from_event(event(chunk_size=4))
    pages_when_uploaded = []
    real_put = s3.put_object

    def put(**kwargs):
        pages_when_uploaded.append((kwargs["Key"], redshift.pages_served))
        return real_put(**kwargs)

    s3.put_object = put
    run_export(request, redshift, s3, FakeContext().get_remaining_time_in_millis, sleep=lambda s: None)
    chunk_uploads = [pages for key, pages in pages_when_uploaded if "/chunks/" in key]
    assert chunk_uploads == [3, 5, 6]  # chunk 0 is full once page 3 (rows 5-6) starts


def test_the_statement_gets_its_named_parameters():
    _, _, redshift = export([lead(1)])
    [call] = redshift.executed
    assert call["Parameters"] == [{"name": "day", "value": "2024-01-05"}]
    assert call["Sql"].startswith("select * from leads where day = :day")


# -- statement outcomes -----------------------------------------------------------------

def test_a_failed_statement_is_a_named_error_with_redshift_s_message():
    redshift = FakeRedshiftData(COLUMNS, [], statuses=["STARTED", "FAILED"], error='ERROR: column "nope" does not exist')
    with pytest.raises(QueryFailed, match='ended FAILED: ERROR: column "nope" does not exist'):
        export([], redshift=redshift)


def test_a_statement_that_cannot_finish_in_time_is_cancelled_and_points_to_the_wait_loop():
    redshift = FakeRedshiftData(COLUMNS, [], statuses=["STARTED"])
    clock = FakeContext(remaining_ms=900_000, step_ms=100_000)
    s3 = FakeS3()
    with pytest.raises(QueryTooSlow, match="wait-state loop"):
        export([], redshift=redshift, clock=clock, s3=s3)
    assert redshift.cancelled == ["stmt-1"]
    assert s3.calls == []  # nothing written


def test_running_out_of_time_while_writing_is_a_named_error_and_leaves_no_manifest():
    clock = FakeContext(remaining_ms=60_000, step_ms=9_000)
    s3 = FakeS3()
    redshift = FakeRedshiftData(COLUMNS, [lead(i) for i in range(1, 40)], page_size=3)
    with pytest.raises(ExportOutOfTime, match="rows written when the Lambda's time ran out"):
        export([], redshift=redshift, clock=clock, s3=s3)
    assert (BUCKET, "runs/2024-01-05/manifest.json") not in s3.objects


def test_a_statement_without_a_result_set_is_refused():
    redshift = FakeRedshiftData(COLUMNS, [], has_result_set=False)
    with pytest.raises(InvalidExportRequest, match="no result set"):
        export([], redshift=redshift)


# -- input ------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (dict(query={"sql": "select 1"}), "query: database must be a non-empty string, got None"),
    (dict(target={"field_mapping": {}}), "target.external_id_field"),
    (dict(target={"external_id_field": "X", "field_mapping": {"a": 1}}), "target.field_mapping"),
    (dict(output={"prefix": "x"}), "'output' must be an object with a non-empty 'bucket'"),
    (dict(chunk_size=0), "chunk_size must be a positive integer or null"),
    (dict(chunk_size=None, target={"external_id_field": "X"}), "target.rate must be"),
    (dict(chunk_size=None, target={"external_id_field": "X", "rate": {"requests": 0, "per_seconds": 2}}),
     "target.rate.requests"),
    (dict(map_mode="PARALLEL"), "map_mode must be one of DISTRIBUTED, INLINE"),
])
def test_bad_input_says_which_field(overrides, message):
    with pytest.raises(InvalidExportRequest, match=message):
        ExportRequest.from_event(event(**overrides))


def test_handler_returns_items_only_for_an_inline_map(monkeypatch):
    s3 = FakeS3()
    redshift = FakeRedshiftData(COLUMNS, [lead(i) for i in range(1, 6)])
    monkeypatch.setattr(query_executor, "client", lambda service: {"s3": s3, "redshift-data": redshift}[service])
    distributed = query_executor.handler(event(), FakeContext())
    inline = query_executor.handler(event(map_mode="INLINE"), FakeContext())
    assert "items" not in distributed
    assert distributed == {"bucket": BUCKET, "prefix": "runs/2024-01-05", "manifest_key": layout.manifest_key("runs/2024-01-05"),
                           "chunks": 2, "records": 5, "contract_errors": 0, "rows": 5}
    assert inline["items"] == json.loads(s3.text(BUCKET, inline["manifest_key"]))


def test_an_inline_map_that_would_overflow_the_state_payload_is_refused_by_name():
    from step_lambdas.chunking import ManifestEntry
    from step_lambdas.export import ExportSummary, TooManyChunksForInline

    summary = ExportSummary(BUCKET, "p", "p/manifest.json",
                            [ManifestEntry(i, layout.chunk_key("p", i), 1) for i in range(5000)])
    assert "items" not in summary.to_output(with_items=False)
    with pytest.raises(TooManyChunksForInline, match="use map_mode DISTRIBUTED"):
        summary.to_output(with_items=True)


def test_a_lone_surrogate_in_one_row_is_a_contract_error_not_a_failed_export():
    # The Data API's JSON may carry "\ud83d" (half an emoji): botocore parses it into a string
    # UTF-8 cannot encode; before the contract checked it, encoding that row failed the export.
    rows = [lead(1), lead(2, company="Caf\ud83d"), lead(3), lead(4, lead_id="L-\udc00")]
    summary, s3, _ = export(rows)
    assert (summary.rows, summary.records, summary.contract_errors) == (4, 2, 2)
    title, external_id = lines(s3, "runs/2024-01-05/contract-errors.jsonl")
    assert title["row"] == 2 and title["external_id"] == "2"
    assert title["reasons"] == ['title: expected text encodable as UTF-8, got str "Caf\\ud83d" '
                                "with a lone surrogate U+D83D"]
    assert external_id["row"] == 4 and external_id["external_id"] == "L-\\udc00"  # kept readable, as text
    assert external_id["reasons"][0].startswith("external_id: expected text encodable as UTF-8")
