"""Lambda: start a Redshift statement through the Data API; returns ``{"statement_id"}``."""

from step_lambdas.aws import client
from step_lambdas.warehouse import StatementSpec, start_statement


def handler(event, context):
    spec = StatementSpec.from_event(event)
    return {"statement_id": start_statement(client("redshift-data"), spec)}
