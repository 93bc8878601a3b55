"""Wait for a Data API statement inside a Lambda's time budget, then page its result.

The wait loop (Step Functions Wait/Choice) is the right tool for statements that run long;
a Lambda may only wait for statements that finish well within its own timeout.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError

from step_lambdas.contract.events import StatementSpec
from step_lambdas.warehouse import FAILED_STATES, FINISHED, describe_statement, start_statement

_FIRST_POLL_S = 0.05
_MAX_POLL_S = 2.0


class QueryFailed(Exception):
    """Redshift ended the statement FAILED or ABORTED; the message carries Redshift's error."""


class QueryRejected(Exception):
    """The Data API refused to start the statement (bad parameters, unknown database, ...)."""


class RedshiftSecretUnreadable(QueryRejected):
    """The Data API could not read the statement's secret_arn, or found no username and password in it."""


class QueryTooSlow(Exception):
    """The statement did not finish while the Lambda had time left to export its result."""


def start_query(client: Any, spec: StatementSpec) -> str:
    """Start ``spec``; a ValidationException becomes :class:`QueryRejected` with the API's message,
    or :class:`RedshiftSecretUnreadable` naming the ARN when the message is about the secret."""
    try:
        return start_statement(client, spec)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        message = error.response["Error"].get("Message")
        # The Data API reads the secret at the call; its refusal may not name the ARN
        # ("username and password in secret cannot be empty"), so this error does. With a
        # db_user too, a message about the secret is the refusal of giving both.
        if spec.secret_arn and not spec.db_user and "secret" in (message or "").lower():
            raise RedshiftSecretUnreadable(
                f"the Redshift secret {spec.secret_arn} could not be read or has no username and password; "
                f"the Redshift Data API said: {message}. Check secret_arn (its account and region too) and "
                'that the secret holds "username" and "password"'
            ) from None
        raise QueryRejected(f"the Redshift Data API refused the statement: {message}") from None


def wait_for_statement(
    client: Any,
    statement_id: str,
    remaining_ms: Callable[[], int],
    reserve_ms: int,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll DescribeStatement until FINISHED; return the summary of :func:`describe_statement`.

    Stops waiting when less than ``reserve_ms`` would be left for reading the result:
    the statement is cancelled (best effort, so it does not run on unobserved) and
    :class:`QueryTooSlow` tells the user to build the table with the wait loop first.
    """
    delay = _FIRST_POLL_S
    while True:
        summary = describe_statement(client, statement_id)
        status = summary["status"]
        if status == FINISHED:
            return summary
        if status in FAILED_STATES:
            raise QueryFailed(f"statement {statement_id} ended {status}: {summary['error'] or 'no error message'}")
        left = remaining_ms()
        if left - delay * 1000 < reserve_ms:
            _cancel_quietly(client, statement_id)
            raise QueryTooSlow(
                f"statement {statement_id} was still {status} with {left / 1000:.0f} s of the Lambda's time left "
                f"({reserve_ms / 1000:.0f} s are kept for writing the chunks); it was cancelled. "
                "Build the table first with the wait-state loop (e.g. CREATE TABLE ... AS your query) "
                "and let the chunked iterator select from it."
            )
        sleep(delay)
        delay = min(delay * 2, _MAX_POLL_S)


def _cancel_quietly(client: Any, statement_id: str) -> None:
    try:
        client.cancel_statement(Id=statement_id)
    except Exception:  # already ended or not cancellable: the error we raise says what matters
        pass


def result_pages(client: Any, statement_id: str) -> Iterator[dict[str, Any]]:
    """GetStatementResult pages, one at a time (NextToken), so memory holds one page."""
    token = None
    while True:
        kwargs = {"Id": statement_id}
        if token:
            kwargs["NextToken"] = token
        page = client.get_statement_result(**kwargs)
        yield page
        token = page.get("NextToken")
        if not token:
            return
