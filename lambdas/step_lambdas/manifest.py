"""The functions of the bundle: one source of truth for the sandbox and the CloudFormation template."""

from __future__ import annotations

from dataclasses import dataclass



@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    timeout_s: int
    memory_mb: int
    description: str


# Keyed by the contract's function keys (step_lambdas.contract.defaults.FUNCTION_KEYS).
FUNCTIONS: dict[str, FunctionSpec] = {
    "statement-start": FunctionSpec(
        handler="step_lambdas.handlers.statement_start.handler",
        timeout_s=60,
        memory_mb=256,
        description="Starts a Redshift statement through the Data API; returns its id.",
    ),
    "statement-status": FunctionSpec(
        handler="step_lambdas.handlers.statement_status.handler",
        timeout_s=60,
        memory_mb=256,
        description="Describes a Redshift Data API statement as a small summary.",
    ),
    "query-executor": FunctionSpec(
        handler="step_lambdas.handlers.query_executor.handler",
        timeout_s=900,
        memory_mb=1024,
        description="Runs the chunked iterator's query; writes its records to S3 as JSON Lines chunks and a manifest.",
    ),
    "chunk-syncer": FunctionSpec(
        handler="step_lambdas.handlers.chunk_syncer.handler",
        timeout_s=900,
        memory_mb=512,
        description="Upserts one chunk into Pipedrive Deals through the rolling-window limiter; stops early with a cursor.",
    ),
    "report": FunctionSpec(
        handler="step_lambdas.handlers.report.handler",
        timeout_s=60,
        memory_mb=256,
        description="Totals the chunk syncers' results of one chunked-iterator run into its report.",
    ),
}
