"""Lambda: the status of a Redshift Data API statement as the wait loop's summary."""

from step_lambdas.aws import client
from step_lambdas.contract.events import StatementStatusRequest
from step_lambdas.warehouse import describe_statement


def handler(event, context):
    request = StatementStatusRequest.from_event(event)
    return describe_statement(client("redshift-data"), request.statement_id)
