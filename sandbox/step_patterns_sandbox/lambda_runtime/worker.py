"""A warm Lambda "container": one subprocess that serves invocations of one function version.

Started by :mod:`step_patterns_sandbox.lambda_runtime.pool` with the function's environment and its code
directory first on ``sys.path``. It reads one request per line on stdin, runs the handler
with a context whose remaining time is real, and writes the result as one JSON line to the
result pipe (``SANDBOX_RESULT_FD``). The handler's stdout goes to stderr, which the pool
collects as the invocation's log, so prints can never corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

LOG_END_MARK = "\x00SANDBOX-LOG-END"


@dataclass
class LambdaContext:
    """The attributes of AWS's Python ``LambdaContext`` that handlers use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_epoch_s: float = field(repr=False, default=0.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_epoch_s - time.time()) * 1000))


def _load_handler(spec: str):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Handler {spec!r} is not of the form module.function")
    return getattr(importlib.import_module(module_name), function_name)


def _error_payload(error: BaseException) -> dict:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        # Drop this runtime's own frame: the trace starts in the handler, as in Lambda.
        "stackTrace": traceback.format_tb(error.__traceback__)[1:],
    }


def main() -> None:
    result_pipe = os.fdopen(int(os.environ.pop("SANDBOX_RESULT_FD")), "w", buffering=1)
    sys.path.insert(0, os.environ.pop("SANDBOX_CODE_DIR"))
    # The handler's prints belong in the log, never on the protocol channel.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    env = os.environ
    handler_spec = env["_HANDLER"]
    try:
        handler = _load_handler(handler_spec)
        init_error = None
    except Exception as error:  # an import error fails every invocation, as in Lambda
        handler, init_error = None, error
        traceback.print_exc()

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=env["AWS_LAMBDA_FUNCTION_NAME"],
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            invoked_function_arn=request["function_arn"],
            memory_limit_in_mb=int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            aws_request_id=request["request_id"],
            log_group_name=f"/aws/lambda/{env['AWS_LAMBDA_FUNCTION_NAME']}",
            log_stream_name=request["request_id"],
            deadline_epoch_s=request["deadline_epoch_s"],
        )
        print(f"START RequestId: {context.aws_request_id}", file=sys.stderr)
        if init_error is not None:
            response = {"errored": True, "payload": _error_payload(init_error)}
        else:
            try:
                response = {"errored": False, "payload": handler(request["event"], context)}
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                response = {"errored": True, "payload": _error_payload(error)}
        print(f"END RequestId: {context.aws_request_id}", file=sys.stderr)
        sys.stderr.write(LOG_END_MARK + "\n")
        sys.stderr.flush()
        try:
            encoded = json.dumps(response)
        except (TypeError, ValueError) as error:
            encoded = json.dumps({"errored": True, "payload": {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {error}",
            }})
        result_pipe.write(encoded + "\n")


if __name__ == "__main__":
    main()
