"""Lambda: the status of a Redshift Data API statement as the wait loop's summary."""

from step_lambdas.aws import client
from step_lambdas.warehouse import InvalidStatementSpec, describe_statement


def handler(event, context):
    statement_id = event.get("statement_id") if isinstance(event, dict) else None
    if not isinstance(statement_id, str) or not statement_id:
        raise InvalidStatementSpec("'statement_id' must be a non-empty string")
    return describe_statement(client("redshift-data"), statement_id)
