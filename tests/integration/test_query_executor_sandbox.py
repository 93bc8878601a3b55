"""The deployed query-executor Lambda on the local cloud: Data API on DuckDB, S3 in moto.

Uses the session's ``cloud`` fixture (tests/conftest.py): one local cloud per process, as
the sandbox's Redshift adapter and Lambda runtime are installed process-wide.
"""

from __future__ import annotations

import json
import uuid

import pytest

from step_lambdas.chunking import chunk_size_for_rate

FUNCTION = "step-patterns-query-executor"


@pytest.fixture
def leads(cloud):
    """A table of 23 leads on two days; lead 7 has no company (a contract error)."""
    table = f"leads_{uuid.uuid4().hex[:8]}"
    cloud.warehouse.execute(f"""
        create table {table} as
        select i as lead_id,
               case when i = 7 then null else 'Company ' || i end as company,
               (i * 100 + 0.5)::decimal(12, 2) as amount,
               i % 3 = 0 as hot,
               date '2024-01-04' + cast(i % 2 as integer) as day,
               timestamp '2024-01-01 08:00:00' + i * interval 1 minute as created
        from range(1, 24) t(i)""")
    return table


def invoke(cloud, event):
    answer = cloud.client("lambda").invoke(FunctionName=FUNCTION, Payload=json.dumps(event))
    return answer.get("FunctionError"), json.loads(answer["Payload"].read())


def event_for(cloud, table, prefix, **overrides):
    base = {
        "query": {"sql": f"select lead_id, company, amount, hot, created from {table} "
                         "where day = cast(:day as date) order by lead_id",
                  "database": cloud.endpoints.database, "cluster_identifier": cloud.endpoints.cluster_identifier,
                  "secret_arn": cloud.endpoints.redshift_secret_arn, "parameters": {"day": "2024-01-05"}},
        "target": {"external_id_field": "Lead ID", "rate": {"requests": 20, "per_seconds": 2},
                   "field_mapping": {"lead_id": "external_id", "company": "title", "amount": "value",
                                     "hot": "Hot lead", "created": "add_time"}},
        "output": {"bucket": cloud.endpoints.bucket, "prefix": prefix},
        "chunk_size": 4,
    }
    base.update(overrides)
    return base


def read_jsonl(cloud, key):
    body = cloud.client("s3").get_object(Bucket=cloud.endpoints.bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_one_day_of_leads_becomes_chunks_a_manifest_and_contract_errors(cloud, leads):
    prefix = f"it/{uuid.uuid4().hex[:8]}/2024-01-05"
    error, output = invoke(cloud, event_for(cloud, leads, prefix + "/", map_mode="INLINE"))
    assert error is None, output
    # odd lead ids fall on 2024-01-05: 1, 3, ..., 23 (12 rows), lead 7 breaks the contract
    assert {k: output[k] for k in ("prefix", "chunks", "records", "contract_errors", "rows")} == {
        "prefix": prefix, "chunks": 3, "records": 11, "contract_errors": 1, "rows": 12}
    manifest = read_jsonl(cloud, output["manifest_key"])[0]
    assert manifest == output["items"] == [
        {"index": i, "key": f"{prefix}/chunks/{i:06d}.jsonl", "records": n} for i, n in enumerate((4, 4, 3))]
    records = [r for entry in manifest for r in read_jsonl(cloud, entry["key"])]
    assert [r["external_id"] for r in records] == [str(i) for i in range(1, 24, 2) if i != 7]
    assert records[0] == {"external_id": "1", "title": "Company 1", "value": 100.5,
                          "add_time": "2024-01-01T08:01:00Z", "custom_fields": {"Hot lead": False}}
    assert read_jsonl(cloud, f"{prefix}/contract-errors.jsonl") == [
        {"row": 4, "external_id": "7", "reasons": ["title: expected non-empty string, got null"]}]


def test_without_a_chunk_size_the_rate_and_syncer_timeout_decide_it(cloud, leads):
    prefix = f"it/{uuid.uuid4().hex[:8]}"
    rate = {"requests": 1, "per_seconds": 100}  # a slow rate makes small chunks
    event = event_for(cloud, leads, prefix, chunk_size=None)
    event["target"]["rate"] = rate
    error, output = invoke(cloud, event)
    assert error is None, output
    size = chunk_size_for_rate(1, 100)
    assert "items" not in output  # DISTRIBUTED reads the manifest from S3
    assert [e["records"] for e in read_jsonl(cloud, output["manifest_key"])[0]] == \
        [min(size, 11 - start) for start in range(0, 11, size)]


def test_no_rows_is_a_success_with_an_empty_manifest(cloud, leads):
    prefix = f"it/{uuid.uuid4().hex[:8]}"
    event = event_for(cloud, leads, prefix)
    event["query"]["parameters"] = {"day": "1999-01-01"}
    error, output = invoke(cloud, event)
    assert error is None, output
    assert (output["chunks"], output["records"], output["rows"]) == (0, 0, 0)
    body = cloud.client("s3").get_object(Bucket=cloud.endpoints.bucket, Key=output["manifest_key"])["Body"].read()
    assert json.loads(body) == []


def test_invalid_sql_fails_with_a_named_error_carrying_the_engine_s_message(cloud, leads):
    prefix = f"it/{uuid.uuid4().hex[:8]}"
    event = event_for(cloud, leads, prefix)
    event["query"]["sql"] = f"select no_such_column from {leads} where day = cast(:day as date)"
    error, output = invoke(cloud, event)
    assert error is not None
    assert output["errorType"] == "QueryFailed"
    assert "ended FAILED" in output["errorMessage"] and "no_such_column" in output["errorMessage"]
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.endpoints.bucket, Prefix=prefix)
    assert listed["KeyCount"] == 0  # nothing written for a failed query


def test_a_mapping_that_does_not_fit_the_columns_fails_before_writing(cloud, leads):
    prefix = f"it/{uuid.uuid4().hex[:8]}"
    event = event_for(cloud, leads, prefix)
    event["target"]["field_mapping"] = {"lead_id": "external_id", "company_name": "title"}
    error, output = invoke(cloud, event)
    assert output["errorType"] == "FieldMappingError"
    assert "mapped columns not in the query result: 'company_name'" in output["errorMessage"]
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.endpoints.bucket, Prefix=f"{prefix}/manifest.json")
    assert listed["KeyCount"] == 0


def test_unused_parameters_are_refused_by_name(cloud, leads):
    event = event_for(cloud, leads, f"it/{uuid.uuid4().hex[:8]}")
    event["query"]["parameters"] = {"day": "2024-01-05", "extra": "1"}
    error, output = invoke(cloud, event)
    assert output["errorType"] == "QueryRejected"
    assert "extra" in output["errorMessage"]
