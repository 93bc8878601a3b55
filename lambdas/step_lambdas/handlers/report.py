"""Lambda: the chunked iterator's report (its return value is the execution output).

Input: ``{"export", "output", "execution_name", "execution_start_time"}``. Output, also
written to ``{prefix}/report.json``: ``{"records", "created", "updated", "unchanged",
"failed", "contract_errors", "requests", "responses_429", "chunks", "chunks_reported",
"elapsed_s", "requests_per_second", "results_prefix", "failures_location"}``
(see :mod:`step_lambdas.reporting`).
"""

import datetime as dt

from step_lambdas.aws import client
from step_lambdas.reporting import ReportRequest, make_report


def handler(event, context):
    request = ReportRequest.from_event(event)
    return make_report(client("s3"), request, now=dt.datetime.now(dt.timezone.utc))
