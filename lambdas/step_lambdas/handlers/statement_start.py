"""Lambda: start a Redshift statement through the Data API; returns ``{"statement_id"}``.

Named errors: ``InvalidStatementSpec``, ``QueryRejected`` (the Data API refused the statement)
and ``RedshiftSecretUnreadable`` (it could not use secret_arn), each with the API's message.
"""

from step_lambdas.aws import client
from step_lambdas.statement_results import start_query
from step_lambdas.contract.events import StatementSpec


def handler(event, context):
    spec = StatementSpec.from_event(event)
    return {"statement_id": start_query(client("redshift-data"), spec)}
