"""Notice that the Step Functions execution a Lambda works for was stopped.

StopExecution (Airflow's "Mark failed", a deferral timeout, the console) does not interrupt
a Lambda invocation in flight: without this, a chunk syncer would go on writing deals for the
rest of its time budget (up to 15 minutes). A daemon thread describes the execution every few
seconds so the sending loop only reads a flag.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from step_lambdas.pipedrive.errors import StopRun

log = logging.getLogger(__name__)

POLL_S = 5.0  # DescribeExecution per running syncer: far under its quota, a few seconds late at most


class ExecutionStopped(StopRun):
    """The execution this invocation works for is no longer running; sending more would be unwanted."""


class ExecutionWatch:
    """``with ExecutionWatch(sfn, arn) as watch: ... watch.raise_if_stopped()``.

    ``arn`` may be None (invoked outside a state machine): then it never reports a stop. A
    failed DescribeExecution is logged and ignored: a watch that cannot see must not stop a sync.
    """

    def __init__(self, sfn: Any, execution_arn: str | None, poll_s: float = POLL_S) -> None:
        self._sfn = sfn
        self.execution_arn = execution_arn
        self._poll_s = poll_s
        self._done = threading.Event()
        self.stopped_status: str | None = None

    def __enter__(self) -> "ExecutionWatch":
        if self.execution_arn:
            threading.Thread(target=self._watch, name="execution-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def raise_if_stopped(self, *_progress: object) -> None:
        """Usable as the syncer's ``on_progress``: raises once the execution stopped."""
        if self.stopped_status is not None:
            raise ExecutionStopped(
                f"execution {self.execution_arn} is {self.stopped_status}: stopped sending; "
                "what was sent is in the sync state, a rerun goes on from there"
            )

    def _watch(self) -> None:
        while not self._done.wait(self._poll_s):
            try:
                status = self._sfn.describe_execution(executionArn=self.execution_arn)["status"]
            except Exception as error:  # noqa: BLE001 - see the class docstring
                log.warning("cannot describe execution %s (%s); syncing on", self.execution_arn, error)
                continue
            if status != "RUNNING":
                self.stopped_status = status
                return
