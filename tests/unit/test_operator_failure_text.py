"""What a person reads in the task log when an execution fails."""

import json

from step_patterns.operators.base import describe_failure, readable_cause


def test_redshift_message_is_shown_as_is():
    assert readable_cause('ERROR: relation "leads" does not exist') == 'ERROR: relation "leads" does not exist'


def test_lambda_error_payload_is_reduced_to_type_and_message():
    payload = {"errorType": "QueryFailed", "errorMessage": "column x missing", "stackTrace": ["  File ..."]}
    assert readable_cause(json.dumps(payload)) == "QueryFailed: column x missing"
    # our Fail states prefix the original error name
    assert readable_cause("QueryFailed: " + json.dumps(payload)) == "QueryFailed: column x missing"


def test_failure_line_names_execution_status_error_and_cause():
    line = describe_failure({
        "execution_arn": "arn:aws:states:us-east-1:1:execution:m:e",
        "execution_status": "FAILED",
        "error": "Redshift.StatementFailed",
        "cause": "ERROR: division by zero",
    })
    assert line == ("Step Functions execution arn:aws:states:us-east-1:1:execution:m:e ended FAILED: "
                    "Redshift.StatementFailed: ERROR: division by zero")


def test_missing_cause_is_said_not_hidden():
    assert readable_cause(None) == "no cause given"


def _sync_operator(**kwargs):
    from airflow.sdk import DAG

    from step_patterns.operators import ChunkedIteratorOperator

    with DAG("d", schedule=None):
        return ChunkedIteratorOperator(task_id="sync", sql="SELECT 1", database="dev", cluster_identifier="c",
                                       role_arn="r", bucket="b", pipedrive_secret_arn="arn:secret", **kwargs)


REPORT = {"records": 30, "created": 0, "updated": 0, "unchanged": 0, "failed": 30, "contract_errors": 0,
          "not_synced": 30, "not_synced_because": ["AuthenticationFailed: Pipedrive refused the API token"],
          "failures_location": "s3://b/runs/2024-01-05/failures.jsonl"}


def test_records_never_synced_fail_the_task_saying_why_and_where():
    import pytest

    from step_patterns.operators.base import ExecutionFailed

    with pytest.raises(ExecutionFailed) as failed:
        _sync_operator().result_from_output(REPORT)
    assert str(failed.value) == (
        "30 records failed (30 not synced: AuthenticationFailed: Pipedrive refused the API token), "
        "more than max_failed_records=0; reasons per record: s3://b/runs/2024-01-05/failures.jsonl")


def test_failures_within_the_tolerance_return_the_report_as_xcom():
    assert _sync_operator(max_failed_records=30).result_from_output(REPORT) == REPORT
