"""StopExecution as AWS does it: the execution ends ABORTED at once.

moto's interpreter only notices a stop between states, so an execution stopped while a
Lambda Task runs stays RUNNING until the Task ends, and then reports how the Task ended
(FAILED, or goes on). AWS ends it ABORTED immediately (the Lambda invocation itself runs on,
as here). Airflow's kill and deferral-timeout paths depend on that.
"""

from __future__ import annotations

from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend import execution as moto_execution

_original_stop = moto_execution.Execution.stop
_original_reflect = moto_execution.BaseExecutionWorkerCommunication._reflect_execution_status


def _stop(self, stop_date, error, cause):
    _original_stop(self, stop_date=stop_date, error=error, cause=cause)
    if self.exec_status == ExecutionStatus.RUNNING:
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = stop_date
        self.error, self.cause = error, cause  # DescribeExecution shows them, as on AWS


def _reflect(self):
    if self.execution.exec_status == ExecutionStatus.ABORTED:
        return  # stopped stays stopped, whatever the Task in flight did afterwards
    _original_reflect(self)


def install() -> None:
    moto_execution.Execution.stop = _stop
    moto_execution.BaseExecutionWorkerCommunication._reflect_execution_status = _reflect


def uninstall() -> None:
    moto_execution.Execution.stop = _original_stop
    moto_execution.BaseExecutionWorkerCommunication._reflect_execution_status = _original_reflect
