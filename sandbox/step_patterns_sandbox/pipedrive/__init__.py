"""A Pipedrive-compatible API server for tests, benchmarks and demos (dev/test only).

    from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings
    with PipedriveSandbox(PipedriveSettings(burst_limit=20, window_s=2.0)) as sandbox:
        requests.post(f"{sandbox.base_url}/api/v2/deals", json={"title": "t"},
                      headers={"x-api-token": "sandbox-token"})

See docs/sandbox-pipedrive.md for the API it serves and its rate-limit model.
"""

from .sandbox import PipedriveSandbox
from .settings import DEFAULT_COSTS, PipedriveSettings, field_key

__all__ = ["PipedriveSandbox", "PipedriveSettings", "DEFAULT_COSTS", "field_key"]
