"""ChunkedIteratorOperator: sync a query's records into Pipedrive Deals through the chunked iterator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from step_lambdas.contract import checks, defaults
from step_lambdas.contract.events import DEFAULT_SYNC_CONCURRENCY
from step_lambdas.contract.rate import RateShare, parse_rate
from step_patterns.asl import ChunkedIteratorSettings, build_chunked_iterator
from step_patterns.connections import PIPEDRIVE_DEFAULT_BASE_URL, OwnedSecretsHook, PipedriveHook
from step_patterns.operators.base import ExecutionFailed, StateMachineOperator
from step_patterns.operators.statement import STATEMENT_TEMPLATE_FIELDS, RedshiftStatementMixin
from step_patterns.ui import SYNC_LOCATION_KEY
from step_patterns.ui.links import PipedriveSyncLink


def _rate(name: str, value: Any) -> tuple[int, float]:
    return parse_rate(value, name)


def _rate_share(name: str, value: str, syncers: int) -> RateShare:
    return RateShare.split(value, syncers, name)


class ChunkedIteratorOperator(RedshiftStatementMixin, StateMachineOperator):
    """Create or update Pipedrive Deals from a Redshift query, at the rate limit's full speed.

    The query's rows are written to S3 in chunks; a Map state hands each chunk to the
    chunk-syncer Lambda, which upserts it through one rolling-window rate limiter and keeps
    a sync state (external id -> deal id, content hash) so reruns create nothing twice and
    unchanged records cost no request. The task's XCom is the run's report (records,
    created, updated, unchanged, failed, 429s, requests/s, where the failures are); the task
    fails when the execution fails or more than ``max_failed_records`` records failed.

    Statement parameters: see :class:`~step_patterns.operators.statement.RedshiftStatementMixin`.
    The SQL should ``ORDER BY`` the external id (chunks are then the same on a rerun).

    Literal values are checked when the DAG is parsed; templated ones (Jinja) when the task
    runs, after rendering, by the same checks (``step_lambdas.contract.checks``).

    :param pipedrive_secret_arn: Secrets Manager secret holding the Pipedrive API token (the
        raw token or ``{"api_token": ...}``). Only the ARN travels; never the token. Or:
    :param pipedrive_conn_id: a ``pipedrive`` Airflow connection (give exactly one of the two). The
        task keeps its token in a Secrets Manager secret of its own
        (``step-patterns/pipedrive/<conn_id>``, written only when the token changed) and passes
        that secret's ARN.
    :param pipedrive_base_url: ``https://<company>.pipedrive.com`` (templated; default: from the
        connection, else ``https://api.pipedrive.com``).
    :param external_id_field: name (or 40-char key) of the Deal custom field that stores the
        warehouse key.
    :param field_mapping: query column -> Deal field, ``external_id``, or custom field name
        (templated: a dict, or text holding one, e.g. ``"{{ var.value.mapping }}"``).
    :param bucket: S3 bucket for chunks, results and sync state (templated).
    :param prefix: S3 prefix of this run (templated; default per DAG, task and data interval,
        so a backfilled day writes under its own prefix).
    :param sync_state_prefix: S3 prefix of the sync state shared by all runs of this task.
    :param rate: Pipedrive's burst limit as ``N/Ws`` (e.g. ``"20/2s"``; templated); split evenly
        between concurrent chunk syncers.
    :param concurrency: requests in flight per chunk syncer (latency must not waste the budget).
    :param chunk_size: records per chunk; default computed from the rate and the syncer's
        time budget.
    :param map_mode: ``"DISTRIBUTED"`` (default; manifest read from S3) or ``"INLINE"`` (small runs).
    :param max_concurrency: chunk syncers running at once (default 1: one writer per token).
    :param max_failed_records: failed records tolerated before the task fails (default 0).
    """

    template_fields: Sequence[str] = (
        *StateMachineOperator.template_fields,
        *STATEMENT_TEMPLATE_FIELDS,
        "pipedrive_secret_arn", "pipedrive_base_url", "bucket", "prefix", "sync_state_prefix",
        "field_mapping", "rate",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json", "field_mapping": "json"}
    operator_extra_links = (*StateMachineOperator.operator_extra_links, PipedriveSyncLink())

    def __init__(
        self,
        *,
        sql: str,
        bucket: str,
        database: str | None = None,
        pipedrive_secret_arn: str | None = None,
        pipedrive_conn_id: str | None = None,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        secret_arn: str | None = None,
        db_user: str | None = None,
        redshift_conn_id: str | None = None,
        parameters: dict[str, Any] | list[dict[str, Any]] | None = None,
        pipedrive_base_url: str | None = None,
        external_id_field: str = "External ID",
        field_mapping: dict[str, str] | None = None,
        prefix: str | None = None,
        sync_state_prefix: str | None = None,
        rate: str = defaults.DEFAULT_RATE,
        concurrency: int = DEFAULT_SYNC_CONCURRENCY,
        chunk_size: int | None = None,
        map_mode: str = "DISTRIBUTED",
        max_concurrency: int = 1,
        max_failed_records: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.init_statement(
            sql=sql, database=database, cluster_identifier=cluster_identifier,
            workgroup_name=workgroup_name, secret_arn=secret_arn, db_user=db_user, parameters=parameters,
            redshift_conn_id=redshift_conn_id,
        )
        self.pipedrive_secret_arn = pipedrive_secret_arn
        self.pipedrive_conn_id = pipedrive_conn_id
        self.pipedrive_base_url = pipedrive_base_url
        self.external_id_field = external_id_field
        self.field_mapping = field_mapping
        self.bucket = bucket
        self.prefix = prefix or defaults.RUNS_PREFIX.format(dag_id=self.dag_id, task_id=self.task_id)
        self.sync_state_prefix = sync_state_prefix or defaults.SYNC_STATE_PREFIX.format(
            dag_id=self.dag_id, task_id=self.task_id
        )
        self.rate = rate
        self.concurrency = concurrency
        self.chunk_size = chunk_size
        self.map_mode = map_mode
        self.max_concurrency = max_concurrency
        self.max_failed_records = max_failed_records
        self.check_values(rendered=False)

    def check_values(self, *, rendered: bool) -> None:
        """Refuse what the machine or a Lambda would refuse at run time: literal values when the
        DAG is parsed, templated ones (``rate``, ``field_mapping``, ...) once rendered."""
        with self.checking(rendered=rendered) as check:
            rate_ok = check(_rate, "rate", self.rate)
            mode_ok = check(checks.map_mode, "map_mode", self.map_mode)
            check(checks.integer, "concurrency", self.concurrency, 1)
            if mode_ok:
                split_ok = check(checks.map_concurrency, "max_concurrency", self.max_concurrency, self.map_mode)
            else:
                split_ok = check(checks.integer, "max_concurrency", self.max_concurrency, 1)
            check(checks.integer, "max_failed_records", self.max_failed_records, 0)
            check(checks.optional_integer, "chunk_size", self.chunk_size, none="None (computed)")
            if rate_ok and split_ok and not check.problems:
                check(_rate_share, "rate", self.rate, self.max_concurrency)
            if bool(self.pipedrive_conn_id) == bool(self.pipedrive_secret_arn):
                check.refuse("give exactly one of pipedrive_conn_id (an Airflow connection) or pipedrive_secret_arn "
                             "(a Secrets Manager secret); the token itself never travels")
            check(checks.text, "external_id_field", self.external_id_field,
                  what="the name of the Deal custom field holding the warehouse key")
            check(checks.field_mapping, "field_mapping", self.field_mapping)
        # what passed, parsed (what waits for rendering is set in execute)
        self.rate_share = check.values.get("rate")
        if "field_mapping" in check.values:
            self.field_mapping = check.values["field_mapping"]

    def resolve_connections(self, secrets: OwnedSecretsHook) -> None:
        if self.pipedrive_conn_id:
            hook = PipedriveHook(self.pipedrive_conn_id)
            self.pipedrive_secret_arn = hook.owned_secret_arn(secrets)
            self.pipedrive_base_url = self.pipedrive_base_url or hook.base_url()
        super().resolve_connections(secrets)

    def execute(self, context: Context) -> Any:
        # the Pipedrive syncs page reads the run's report and failures here, also when the task fails
        if (ti := context.get("ti")) is not None:
            ti.xcom_push(key=SYNC_LOCATION_KEY, value={
                "bucket": self.bucket, "prefix": self.prefix, "rate": self.rate,
                "aws_conn_id": self.aws_conn_id, "region_name": self.region_name,
            })
        return super().execute(context)

    def build_definition(self) -> dict[str, Any]:
        settings = ChunkedIteratorSettings(
            query_executor_arn=self.function_arn("query-executor"),
            chunk_syncer_arn=self.function_arn("chunk-syncer"),
            report_arn=self.function_arn("report"),
            map_mode=self.map_mode,
            max_concurrency=self.max_concurrency,
        )
        return build_chunked_iterator(settings).to_dict()

    def build_input(self, context: Context) -> dict[str, Any]:
        return {
            "query": self.statement_input(),
            "target": {
                "external_id_field": self.external_id_field,
                "field_mapping": self.field_mapping,
                "pipedrive_secret_arn": self.pipedrive_secret_arn,
                "pipedrive_base_url": self.pipedrive_base_url or PIPEDRIVE_DEFAULT_BASE_URL,
                # each concurrent syncer gets its share, so together they stay under N
                "rate": self.rate_share.to_event(),
                "concurrency": self.concurrency,
            },
            "output": {"bucket": self.bucket, "prefix": self.prefix, "sync_state_prefix": self.sync_state_prefix},
            "chunk_size": self.chunk_size,
            "map_mode": self.map_mode,
        }

    def progress_source(self, context: Context) -> dict[str, Any]:
        limit, window_s = parse_rate(self.rate)  # the whole rate, not one syncer's share
        return {"bucket": self.bucket, "prefix": self.prefix, "limit_per_second": limit / window_s}

    def result_from_output(self, report: dict[str, Any]) -> dict[str, Any]:
        self.log.info(
            "Synced %s records: %s created, %s updated, %s unchanged, %s failed (%s contract errors); "
            "%s requests, %s answered 429, %.1f requests/s in %.1f s",
            report.get("records"), report.get("created"), report.get("updated"), report.get("unchanged"),
            report.get("failed"), report.get("contract_errors"), report.get("requests"),
            report.get("responses_429"), report.get("requests_per_second") or 0.0, report.get("elapsed_s") or 0.0,
        )
        failed = (report.get("failed") or 0)
        if failed > self.max_failed_records:
            not_synced = report.get("not_synced") or 0
            never = (f" ({not_synced} not synced: {'; '.join(report.get('not_synced_because') or [])})"
                     if not_synced else "")
            raise ExecutionFailed(
                f"{failed} records failed{never}, more than max_failed_records={self.max_failed_records}; "
                f"reasons per record: {report.get('failures_location')}"
            )
        return report
