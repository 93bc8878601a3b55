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
