"""What the statement-start and query-executor Lambdas raise when the Data API refuses a statement."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from step_lambdas.handlers import statement_start
from step_lambdas.statement_results import QueryRejected, RedshiftSecretUnreadable, start_query
from step_lambdas.contract.events import StatementSpec

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:redshift/etl-AbCdEf"
STATEMENT = {"sql": "select 1", "database": "dev", "cluster_identifier": "c1", "secret_arn": SECRET_ARN}


class RefusingDataApi:
    """ExecuteStatement answers one error, as botocore raises it."""

    def __init__(self, message: str, code: str = "ValidationException"):
        self.error = ClientError({"Error": {"Code": code, "Message": message}}, "ExecuteStatement")

    def execute_statement(self, **kwargs):
        raise self.error


@pytest.mark.parametrize("data_api_says", [
    f"Secrets Manager can't find the specified secret: {SECRET_ARN}",  # the sandbox's wording
    "username and password in secret cannot be empty",  # AWS's, which does not name the secret
])
def test_a_secret_the_data_api_cannot_use_is_a_named_error_naming_the_arn(data_api_says):
    with pytest.raises(RedshiftSecretUnreadable) as raised:
        start_query(RefusingDataApi(data_api_says), StatementSpec.from_event(STATEMENT))
    assert str(raised.value).startswith(f"the Redshift secret {SECRET_ARN} could not be read")
    assert f"the Redshift Data API said: {data_api_says}." in str(raised.value)
    assert isinstance(raised.value, QueryRejected)  # whoever handled a refusal still does


@pytest.mark.parametrize("statement, data_api_says", [
    pytest.param(STATEMENT, "Parameter day is not used in the SQL.", id="not-about-the-secret"),
    pytest.param({**STATEMENT, "db_user": "etl"}, "SecretArn and DbUser are mutually exclusive", id="both-given"),
    pytest.param({**STATEMENT, "secret_arn": None, "db_user": "etl"}, "secret was not found", id="no-secret-given"),
])
def test_other_refusals_stay_query_rejected_with_the_api_s_message(statement, data_api_says):
    with pytest.raises(QueryRejected) as raised:
        start_query(RefusingDataApi(data_api_says), StatementSpec.from_event(statement))
    assert type(raised.value) is QueryRejected
    assert str(raised.value) == f"the Redshift Data API refused the statement: {data_api_says}"


def test_errors_other_than_a_refusal_reach_the_state_machine_s_retry_unchanged():
    throttled = RefusingDataApi("Rate exceeded", code="ThrottlingException")
    with pytest.raises(ClientError) as raised:
        start_query(throttled, StatementSpec.from_event(STATEMENT))
    assert raised.value is throttled.error


def test_the_wait_loop_s_starter_raises_the_named_error_not_botocore_s(monkeypatch):
    monkeypatch.setattr(statement_start, "client",
                        lambda service: RefusingDataApi("username and password in secret cannot be empty"))
    with pytest.raises(RedshiftSecretUnreadable, match=f"^the Redshift secret {SECRET_ARN} could not be read"):
        statement_start.handler(STATEMENT, None)
