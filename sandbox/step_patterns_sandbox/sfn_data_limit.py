"""Step Functions' 256 KB payload quota, as AWS applies it.

moto already fails a state whose output (or a Task's result) is too large with
States.DataLimitExceeded and AWS's cause ("The state/task '<name or resource>' returned a
result with a size exceeding the maximum number of bytes service limit."). Two differences
are corrected here:

- AWS's quota is "256 KiB of data as a UTF-8 encoded string", so 262,144 bytes is still
  allowed (moto refuses it), counted on the compact JSON the execution history shows (moto
  counts ``json.dumps``' default ``", "``/``": "`` separators, up to a few % more).
- States.DataLimitExceeded and States.Runtime are terminal: a ``States.ALL`` Retry or Catch
  does not take them ("This error type can't catch the States.DataLimitExceeded terminal error
  type and runtime error types", docs.aws.amazon.com/step-functions/latest/dg/
  concepts-error-handling.html). moto's ``States.ALL`` matches them, so a machine catching
  everything would go on here and fail on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser import quotas
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.state import state as moto_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service

MAX_PAYLOAD_BYTES = 262_144
TERMINAL_ERRORS = frozenset({"States.DataLimitExceeded", "States.Runtime"})
_QUOTA_USERS = (quotas, moto_state, state_task_lambda, state_task_service)  # each imported the check by name
_original_within = quotas.is_within_size_quota
_original_error_equals = ErrorEqualsDecl._eval_body


def is_within_size_quota(value: Any) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return len(text.encode("utf-8")) <= MAX_PAYLOAD_BYTES


def _error_equals(self: ErrorEqualsDecl, env) -> None:
    error_name = env.stack[-1]
    if (
        getattr(error_name, "error_name", None) in TERMINAL_ERRORS
        and ErrorEqualsDecl._STATE_ALL_ERROR in self.error_names
    ):
        env.stack.pop()
        env.stack.append(False)  # States.ALL does not take a terminal error
        return
    _original_error_equals(self, env)


def install() -> None:
    for module in _QUOTA_USERS:
        module.is_within_size_quota = is_within_size_quota
    ErrorEqualsDecl._eval_body = _error_equals


def uninstall() -> None:
    for module in _QUOTA_USERS:
        module.is_within_size_quota = _original_within
    ErrorEqualsDecl._eval_body = _original_error_equals
