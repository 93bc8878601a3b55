"""Defaults both sides agree on: the bundle's function names and where a run keeps its objects."""

from __future__ import annotations

FUNCTION_PREFIX = "step-patterns"  # deployed names are <prefix>-<key>, e.g. step-patterns-query-executor
FUNCTION_KEYS = ("statement-start", "statement-status", "query-executor", "chunk-syncer", "report")
DEFAULT_RATE = "20/2s"  # Pipedrive's burst limit of the smallest plan
MACHINE_NAME_PREFIX = "step-patterns"  # state machines are named step-patterns-<dag>-<task>-<hash>
# S3 prefixes of a chunked-iterator task (the run's is templated per data interval); the
# deploy template's lifecycle and IAM policies cover the roots.
RUNS_ROOT = "step-patterns/runs/"
SYNC_STATE_ROOT = "step-patterns/sync-state/"
RUNS_PREFIX = RUNS_ROOT + "{dag_id}/{task_id}/{{{{ data_interval_start | ds }}}}"
SYNC_STATE_PREFIX = SYNC_STATE_ROOT + "{dag_id}/{task_id}"


def function_name(key: str, prefix: str = FUNCTION_PREFIX) -> str:
    """Deployed name of a bundle function, e.g. ``step-patterns-statement-start``."""
    if key not in FUNCTION_KEYS:
        raise KeyError(f"no function {key!r} in the bundle; known: {', '.join(FUNCTION_KEYS)}")
    return f"{prefix}-{key}"
