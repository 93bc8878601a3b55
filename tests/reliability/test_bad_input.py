"""Bad input through the chunked iterator: each is refused with a message saying what and where.

What must hold: the named error (or, for a bad record, a reason naming the field, what was
expected and what came) and nothing else disturbed: the good records of the same run land
once, a rerun with the input fixed completes, no token is shown anywhere.

Not here, with why: a record over the chunk byte budget (8 MiB) cannot come out of the
Redshift Data API, which refuses rows over 64 KB ("Packet for query is too large"); the
query executor's own check is shown by tests/unit/test_query_executor.py::
test_a_record_over_the_byte_budget_is_a_contract_error_not_a_crash. Operator parameters out of
range are refused when the DAG is parsed: tests/unit/test_operator_parse_errors.py. A Redshift
secret without a username and password takes the same path as one that does not exist (the
Data API refuses the call): tests/unit/test_statement_rejections.py and
tests/integration/test_redshift_data_secret.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import DAY, DAY_SQL, LEADS, SyncJob, crm_deals, day_leads, landing

from step_patterns_sandbox.cloud import PIPEDRIVE_TOKEN

from step_patterns.operators.base import ExecutionFailed, readable_cause

# -- helpers ---------------------------------------------------------------------------------


@dataclass
class CustomJob(SyncJob):
    """A sync with operator arguments the harness keeps fixed (e.g. ``field_mapping``)."""

    overrides: dict[str, Any] = field(default_factory=dict)

    def operator(self):
        operator = super().operator()
        for name, value in self.overrides.items():
            setattr(operator, name, value)
        return operator


def token_secret(cloud, secret_string: str) -> str:
    """A Pipedrive token secret of its own: the chunk syncer caches what it read by ARN."""
    name = f"reliability/pipedrive-{uuid.uuid4().hex[:8]}"
    return cloud.client("secretsmanager").create_secret(Name=name, SecretString=secret_string)["ARN"]


def history_text(cloud, outcome) -> str:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=outcome.execution_arn, maxResults=1000)
    return json.dumps(events["events"], default=str)


def rerun_with_the_right_secret(job):
    """The same task and day again, pointed at a secret holding the right token: what landed."""
    job.pipedrive_secret_arn = token_secret(job.cloud, json.dumps({"api_token": PIPEDRIVE_TOKEN}))
    fixed = job.run()
    assert fixed.status == "SUCCEEDED", readable_cause(fixed.cause)
    found = landing(job.cloud, day_leads(job.cloud, DAY))
    assert fixed.report["created"] == LEADS and found.perfect, found
    return fixed, found


def assert_nothing_written_to_pipedrive(cloud) -> None:
    assert cloud.pipedrive.stats()["requests_by_method"].get("POST", 0) == 0
    assert crm_deals(cloud) == {}


# -- the query -------------------------------------------------------------------------------


@pytest.mark.parametrize("company, engine_says", [
    pytest.param("compnay", 'Referenced column "compnay" not found', id="typo-in-a-column"),
    # bytes that are not UTF-8 never become text: the warehouse refuses to decode them
    pytest.param("decode(from_hex('c328'))", "could not convert blob to UTF8 string", id="invalid-utf8-bytes"),
])
def test_invalid_sql_fails_the_run_with_the_engine_s_message_and_writes_nothing(job, observe, company, engine_says):
    job.sql = DAY_SQL.replace("company,", f"{company} AS company,")
    failed = job.run()

    assert (failed.status, failed.error) == ("FAILED", "QueryFailed")
    shown = readable_cause(failed.cause)  # what the Airflow task log shows
    assert shown.startswith("QueryFailed: ") and "ended FAILED" in shown and engine_says in shown, shown
    assert job.cloud.pipedrive.stats()["requests"] == 0  # no chunk syncer ran
    assert crm_deals(job.cloud) == {}

    job.sql = DAY_SQL  # fixed: the same task and day again
    fixed = job.run()
    found = landing(job.cloud, day_leads(job.cloud, DAY))
    assert fixed.status == "SUCCEEDED" and fixed.report["created"] == LEADS and found.perfect, found
    observe(fault=f"invalid SQL ({engine_says})", status=failed.status, error=failed.error, cause=shown[:200],
            rerun_status=fixed.status, rerun_created=fixed.report["created"],
            lost=len(found.lost), duplicates=len(found.duplicated))


@pytest.mark.parametrize("map_mode", ["INLINE", "DISTRIBUTED"])
def test_a_query_with_no_rows_succeeds_with_an_empty_report_and_no_request(job, observe, map_mode):
    job.map_mode = map_mode
    job.parameters = {"start": "1999-01-01 00:00:00", "end": "1999-01-02 00:00:00"}  # no lead that day
    outcome = job.run()

    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    report = outcome.report
    assert {k: report[k] for k in ("records", "created", "failed", "chunks", "requests")} == {
        "records": 0, "created": 0, "failed": 0, "chunks": 0, "requests": 0}
    assert job.failures() == []
    assert job.cloud.pipedrive.stats()["requests"] == 0  # no chunk, so no syncer, not even dealFields
    assert crm_deals(job.cloud) == {}
    observe(fault=f"SQL returning no rows ({map_mode} map)", status=outcome.status, records=report["records"],
            chunks=report["chunks"], pipedrive_requests=0, lost=0, duplicates=0)


# -- bad records among good ones -------------------------------------------------------------

# The day's leads plus six bad rows, placed between them by lead id so every chunk has some.
# custom_fields is a SUPER object in Redshift terms (e.g. built with OBJECT() or parsed from an
# event payload with JSON_PARSE): per row it may hold a text where a number belongs, a field
# Pipedrive lacks, or an unpaired "\ud83d" (half an emoji, cut by a UTF-16 producer: valid JSON,
# not encodable as UTF-8). The sandbox serves DuckDB's UNION type as SUPER, as JSON text.
MIXED_SQL = r"""
    WITH rows AS (
        SELECT lead_id, company,
               CAST(json_object('Lead source', source, 'Score', score) AS VARCHAR) AS custom
        FROM leads
        WHERE created_at >= CAST(:start AS TIMESTAMP) AND created_at < CAST(:end AS TIMESTAMP)
        UNION ALL SELECT 'L-0000005-no-title', NULL, '{"Lead source": "web", "Score": 10}'
        UNION ALL SELECT 'L-0000015-long-title', repeat('Long Name ', 30), '{"Lead source": "web"}'
        UNION ALL SELECT 'L-0000024-half-emoji', 'Emoji SA', '{"Lead source": "Caf\ud83d"}'
        UNION ALL SELECT 'L-0000030-score-text', 'Text Score GmbH', '{"Lead source": "web", "Score": "high"}'
        UNION ALL SELECT 'L-0000044-unknown-field', 'Region AG', '{"Lead source": "web", "Region": "EMEA"}'
        UNION ALL SELECT 'L-0000055-long-source', 'Long Source BV', '{"Lead source": "' || repeat('x', 300) || '"}'
    )
    SELECT lead_id, company, union_value(json := custom) AS custom_fields FROM rows ORDER BY lead_id
"""
# external id -> (where it is refused, the reason it must carry)
BAD_RECORDS = {
    "L-0000005-no-title": ("contract", "title: expected non-empty string, got null"),
    "L-0000015-long-title": ("contract", "title: expected at most 255 characters, got str of 300 characters"),
    "L-0000024-half-emoji": ("contract", "custom_fields.Lead source: expected text encodable as UTF-8, "
                                         'got str "Caf\\ud83d" with a lone surrogate U+D83D'),
    "L-0000030-score-text": ("sync", 'custom_fields.Score: expected number (double field), got str "high"'),
    "L-0000044-unknown-field": ("sync", "custom_fields.Region: expected a custom deal field key or name, "
                                        "got unknown custom field"),
    "L-0000055-long-source": ("sync", "custom_fields.Lead source: expected at most 255 characters (varchar field), "
                                      "got str of 300 characters"),
}


def test_bad_records_fail_one_by_one_with_field_and_reason_and_the_good_ones_land_once(crm, observe):
    job = CustomJob(crm, sql=MIXED_SQL, overrides={"field_mapping": {"lead_id": "external_id", "company": "title"}})
    outcome = job.run()

    # per-record failures are not execution failures
    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    report = outcome.report
    bad = len(BAD_RECORDS)
    assert (report["records"], report["created"], report["failed"], report["contract_errors"]) == (
        LEADS + bad, LEADS, bad, 3)

    failures = {f["external_id"]: f for f in job.failures()}
    assert set(failures) == set(BAD_RECORDS)
    for external_id, (source, reason) in BAD_RECORDS.items():
        failure = failures[external_id]
        where = {"row"} if source == "contract" else {"chunk", "index"}  # row of the result / place in a chunk
        assert failure["source"] == source and where <= set(failure), failure
        assert len(failure["reasons"]) == 1 and failure["reasons"][0].startswith(reason), failure

    expected = day_leads(crm, DAY)
    found = landing(crm, expected)
    assert found.perfect, found
    assert set(crm_deals(crm)) == set(expected)  # no bad record reached Pipedrive, not even cut short
    assert crm.pipedrive.stats()["requests_by_method"]["POST"] == LEADS

    # the Airflow task fails on the report unless the author tolerates that many failures
    operator = job.operator()
    with pytest.raises(ExecutionFailed, match=rf"^{bad} records failed, more than max_failed_records=0; "
                                              r"reasons per record: s3://.*/failures\.jsonl$"):
        operator.result_from_output(report)
    operator.max_failed_records = bad
    assert operator.result_from_output(report) is report

    again = job.run()  # the same task and day again: the same refusals, nothing created twice
    assert again.status == "SUCCEEDED"
    assert (again.report["unchanged"], again.report["failed"], again.report["created"]) == (LEADS, bad, 0)
    after = landing(crm, expected)
    assert after.perfect, after
    observe(fault="bad records among good ones (no title, title over 255, half emoji, text in a number "
                  "field, unknown custom field, varchar over 255)",
            status=outcome.status, records=report["records"], created=report["created"], failed=report["failed"],
            contract_errors=report["contract_errors"],
            reasons={ext: f["reasons"][0][:120] for ext, f in failures.items()},
            rerun_unchanged=again.report["unchanged"], rerun_failed=again.report["failed"],
            lost=len(after.lost), duplicates=len(after.duplicated))


def test_a_column_mapped_to_a_field_pipedrive_lacks_fails_every_record_by_name_and_writes_nothing(crm, observe):
    job = CustomJob(crm, sql=DAY_SQL.replace("score", "score, 'EMEA' AS region", 1), overrides={"field_mapping": {
        "lead_id": "external_id", "company": "title", "source": "Lead source", "score": "Score", "region": "Region"}})
    outcome = job.run()

    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    assert (outcome.report["failed"], outcome.report["created"]) == (LEADS, 0)
    reasons = {tuple(f["reasons"]) for f in job.failures()}
    assert reasons == {("custom_fields.Region: expected a custom deal field key or name, got unknown custom field",)}
    assert_nothing_written_to_pipedrive(crm)
    with pytest.raises(ExecutionFailed, match=f"^{LEADS} records failed"):
        job.operator().result_from_output(outcome.report)

    job.sql, job.overrides = DAY_SQL, {}  # the column dropped from the query and the mapping
    fixed = job.run()
    found = landing(crm, day_leads(crm, DAY))
    assert fixed.status == "SUCCEEDED" and fixed.report["created"] == LEADS and found.perfect, found
    observe(fault="a column mapped to a custom field Pipedrive does not have", status=outcome.status,
            failed=outcome.report["failed"], created=0, reason=next(iter(reasons))[0],
            rerun_created=fixed.report["created"], lost=len(found.lost), duplicates=len(found.duplicated))


# -- the Pipedrive token ---------------------------------------------------------------------


def fail_on_a_refused_token(job):
    """Run ``job`` with a token Pipedrive refuses; check the named error and that the token shows nowhere."""
    wrong = f"wrong-token-{uuid.uuid4().hex}"
    job.pipedrive_secret_arn = token_secret(job.cloud, json.dumps({"api_token": wrong}))
    outcome = job.run()

    assert (outcome.status, outcome.error) == ("FAILED", "ChunkSyncFailed")
    shown = readable_cause(outcome.cause)
    assert shown.startswith(f"ChunksNotSynced: {LEADS} of {LEADS} records not synced (AuthenticationFailed: ") \
        and "the API token was refused" in shown, shown
    for place in (outcome.cause, outcome.input, history_text(job.cloud, outcome)):
        assert wrong not in place
    assert job.cloud.pipedrive.stats()["responses_401"] >= 1
    assert_nothing_written_to_pipedrive(job.cloud)
    return outcome, shown


def test_a_token_pipedrive_refuses_fails_the_run_by_name_without_showing_it(job, observe):
    outcome, shown = fail_on_a_refused_token(job)
    responses_401 = job.cloud.pipedrive.stats()["responses_401"]

    fixed, found = rerun_with_the_right_secret(job)
    observe(fault="a wrong Pipedrive token", status=outcome.status, error=outcome.error, cause=shown,
            responses_401=responses_401, token_in_cause_input_or_history=False,
            rerun_with_a_corrected_secret=fixed.status, lost=len(found.lost), duplicates=len(found.duplicated))


def test_correcting_the_token_secret_in_place_lets_the_rerun_succeed(job, observe):
    # The warm chunk syncer that met the refused token serves the rerun: it must read the
    # secret again rather than keep the client it built with the old token.
    outcome, shown = fail_on_a_refused_token(job)

    job.cloud.client("secretsmanager").put_secret_value(  # same ARN, right token: how a token is rotated
        SecretId=job.pipedrive_secret_arn, SecretString=json.dumps({"api_token": PIPEDRIVE_TOKEN}))
    fixed = job.run()
    assert fixed.status == "SUCCEEDED", readable_cause(fixed.cause)
    found = landing(job.cloud, day_leads(job.cloud, DAY))
    assert fixed.report["created"] == LEADS and found.perfect, found
    observe(fault="a wrong Pipedrive token corrected in place (same secret ARN, warm syncer)", status=outcome.status,
            error=outcome.error, cause=shown, rerun_after_put_secret_value=fixed.status,
            lost=len(found.lost), duplicates=len(found.duplicated))


@pytest.mark.parametrize("secret_string, message", [
    pytest.param("{}", 'the Pipedrive secret is JSON but has no string "api_token" key', id="json-without-api_token"),
    pytest.param(" ", "the Pipedrive secret is empty", id="blank"),  # Secrets Manager refuses ""
])
def test_a_secret_without_a_token_fails_the_run_by_name(job, observe, secret_string, message):
    job.pipedrive_secret_arn = token_secret(job.cloud, secret_string)
    outcome = job.run()

    assert (outcome.status, outcome.error) == ("FAILED", "ChunkSyncFailed")
    shown = readable_cause(outcome.cause)
    assert shown.startswith(f"ChunksNotSynced: {LEADS} of {LEADS} records not synced") \
        and "TokenNotConfigured: " in shown and message in shown and job.pipedrive_secret_arn in shown, shown
    assert job.cloud.pipedrive.stats()["requests"] == 0

    fixed, found = rerun_with_the_right_secret(job)
    observe(fault=f"a Pipedrive secret without a token ({secret_string!r})", status=outcome.status,
            error=outcome.error, cause=shown, rerun_with_a_corrected_secret=fixed.status,
            lost=len(found.lost), duplicates=len(found.duplicated))


# -- secret ARNs that do not exist -----------------------------------------------------------


def missing_arn(existing_arn: str) -> str:
    """An ARN in the same account and region naming no secret."""
    return existing_arn.rsplit(":", 1)[0] + f":reliability/no-such-secret-{uuid.uuid4().hex[:6]}-AbCdEf"


def test_a_pipedrive_secret_arn_that_does_not_exist_fails_the_run_naming_it(job, observe):
    job.pipedrive_secret_arn = missing_arn(job.cloud.endpoints.pipedrive_secret_arn)
    outcome = job.run()

    assert (outcome.status, outcome.error) == ("FAILED", "ChunkSyncFailed")
    shown = readable_cause(outcome.cause)
    assert shown.startswith(f"ChunksNotSynced: {LEADS} of {LEADS} records not synced") \
        and "TokenSecretNotFound: " in shown and job.pipedrive_secret_arn in shown \
        and "does not exist" in shown, shown
    assert job.cloud.pipedrive.stats()["requests"] == 0

    fixed, found = rerun_with_the_right_secret(job)
    observe(fault="a Pipedrive secret ARN that does not exist", status=outcome.status, error=outcome.error,
            cause=shown, rerun_with_an_existing_secret=fixed.status,
            lost=len(found.lost), duplicates=len(found.duplicated))


def test_a_redshift_secret_arn_that_does_not_exist_fails_the_query_naming_it(job, observe):
    job.redshift_secret_arn = missing_arn(job.cloud.endpoints.redshift_secret_arn)
    outcome = job.run()

    # The Data API reads the secret at ExecuteStatement and refuses the call: no statement runs.
    assert (outcome.status, outcome.error) == ("FAILED", "QueryFailed")
    shown = readable_cause(outcome.cause)
    assert shown.startswith(f"RedshiftSecretUnreadable: the Redshift secret {job.redshift_secret_arn} "
                            "could not be read"), shown
    assert job.cloud.pipedrive.stats()["requests"] == 0  # no chunk syncer ran
    assert crm_deals(job.cloud) == {}

    job.redshift_secret_arn = job.cloud.endpoints.redshift_secret_arn  # the deployment's, which exists
    fixed = job.run()
    found = landing(job.cloud, day_leads(job.cloud, DAY))
    assert fixed.status == "SUCCEEDED" and fixed.report["created"] == LEADS and found.perfect, found
    observe(fault="a Redshift secret ARN that does not exist", status=outcome.status, error=outcome.error,
            cause=shown, pipedrive_requests=0, rerun_with_an_existing_secret=fixed.status,
            rerun_created=fixed.report["created"], lost=len(found.lost), duplicates=len(found.duplicated))
