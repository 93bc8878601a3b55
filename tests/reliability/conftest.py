"""Fixtures of the reliability suite: a day of leads, a clean CRM, and no fault left behind."""

from __future__ import annotations

import pytest
from harness import DAY, LEADS, SyncJob

from step_patterns_sandbox.demo_data import seed_leads

FAST_BURST = 100  # requests per 2 s: the suite is about faults, not the rate (tests/integration covers it)


@pytest.fixture
def crm(cloud):
    """The session cloud with ``LEADS`` leads on ``DAY``, an empty CRM at a fast burst limit.

    Afterwards every Pipedrive setting, Lambda fault and AWS fault a test changed is undone.
    """
    seed_leads(cloud.warehouse, days=1, per_day=LEADS, last_day=DAY)
    before = cloud.pipedrive.settings
    cloud.pipedrive.configure(burst_limit=FAST_BURST)
    cloud.pipedrive.reset()
    yield cloud
    cloud.end_lambda_faults()
    cloud.end_aws_faults()
    cloud.pipedrive.configure(**{name: getattr(before, name) for name in _RUNTIME_SETTINGS})
    cloud.pipedrive.reset()


@pytest.fixture
def job(crm):
    """A sync of ``DAY`` with its own machine, run prefix and sync state (change fields before ``run``)."""
    return SyncJob(crm, DAY)


_RUNTIME_SETTINGS = (
    "burst_limit", "window_s", "daily_budget", "latency_ms", "jitter_ms", "error_rate_5xx", "reset_rate",
    "slow_rate", "slow_ms", "fault_after_write_rate", "search_lag_s", "block_after_ignored_429", "block_duration_s",
    "seed",
    "tokens", "costs",
)


@pytest.fixture
def observe(request, artifacts_dir):
    """Record what a drill measured in ``artifacts/reliability.jsonl`` (the figures of docs/reliability.md).

    ``observe(lost=0, duplicates=0, ...)``: one JSON line per call, keyed by the test's node id.
    """
    import json

    def record(**figures):
        line = {"test": request.node.nodeid, **figures}
        with (artifacts_dir / "reliability.jsonl").open("a") as out:
            out.write(json.dumps(line, default=str) + "\n")
        print("reliability:", json.dumps(line, default=str))

    return record
