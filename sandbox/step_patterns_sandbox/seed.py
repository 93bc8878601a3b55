"""``python -m step_patterns_sandbox.seed``: fill a running local cloud's warehouse with the demo's leads.

The warehouse engine lives inside the running sandbox (which holds its DuckDB file), so the seed
goes through that sandbox's Redshift Data API, found in its ``endpoints.json``, as any client
would. docker compose's ``seed`` service runs this (``docker compose run --rm seed``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from step_lambdas.statement_results import QueryFailed, QueryRejected, QueryTooSlow, result_pages, start_query, wait_for_statement
from step_lambdas.contract.events import StatementSpec, parse_parameters
from step_patterns_sandbox.cloud import SANDBOX_ACCESS_KEY
from step_patterns_sandbox.demo_data import create_qualified_leads, seed_leads


class DataApiWarehouse:
    """``execute(sql, params) -> rows``, what :mod:`demo_data` takes, over a running cloud's Data API."""

    def __init__(self, endpoints: Mapping[str, Any], *, client: Any = None, timeout_s: float = 300.0) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.client = client or boto3.client(
            "redshift-data", endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"],
            aws_access_key_id=SANDBOX_ACCESS_KEY, aws_secret_access_key=SANDBOX_ACCESS_KEY,
        )

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]:
        spec = StatementSpec(
            sql=sql, database=self.endpoints["database"], cluster_identifier=self.endpoints["cluster_identifier"],
            secret_arn=self.endpoints["redshift_secret_arn"], parameters=parse_parameters(dict(params or {})),
        )
        deadline = time.monotonic() + self.timeout_s
        statement_id = start_query(self.client, spec)
        summary = wait_for_statement(self.client, statement_id, lambda: int((deadline - time.monotonic()) * 1000), 0)
        if not summary["has_result_set"]:
            return []
        return [tuple(_value(field) for field in record)
                for page in result_pages(self.client, statement_id) for record in page.get("Records", [])]


def _value(field: Mapping[str, Any]) -> Any:
    """A Data API field (``{"longValue": 3}``, ``{"isNull": true}``, ...) as a Python value."""
    if field.get("isNull"):
        return None
    return next(iter(field.values()))


def build_parser() -> argparse.ArgumentParser:
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    parser = argparse.ArgumentParser(prog="python -m step_patterns_sandbox.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=Path, default=Path(".sandbox/endpoints.json"),
                        help="the running sandbox's endpoints file (<state-dir>/endpoints.json)")
    parser.add_argument("--days", type=int, default=3, help="days of leads (default 3)")
    parser.add_argument("--per-day", type=int, default=100, help="leads per day (default 100)")
    parser.add_argument("--last-day", type=date.fromisoformat, default=yesterday,
                        help=f"the last day with leads, YYYY-MM-DD (default yesterday, {yesterday})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        endpoints = json.loads(args.endpoints.read_text())
    except (OSError, ValueError) as error:
        print(f"seed: cannot read the sandbox's endpoints from {args.endpoints} ({error}); is the sandbox up "
              "with this --state-dir?", file=sys.stderr)
        return 2
    warehouse = DataApiWarehouse(endpoints)
    last_day = str(args.last_day)
    try:
        count = seed_leads(warehouse, days=args.days, per_day=args.per_day, last_day=last_day)
        create_qualified_leads(warehouse)
    except (QueryFailed, QueryRejected, QueryTooSlow, ClientError, BotoCoreError) as error:
        print(f"seed: the Redshift Data API at {endpoints['aws_endpoint_url']} failed: {error}", file=sys.stderr)
        return 1
    print(f"seeded {count} leads ({args.days} days x {args.per_day}, up to {last_day}) into table leads of "
          f"{endpoints['cluster_identifier']}/{endpoints['database']} through {endpoints['aws_endpoint_url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
