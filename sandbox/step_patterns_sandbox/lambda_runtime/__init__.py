"""Run the Lambda bundle's handlers for moto's Lambda service, without Docker.

``install()`` replaces ``moto.awslambda.models.LambdaFunction._invoke_lambda`` (moto's
Docker runner) with warm worker subprocesses (see :mod:`.pool` for why). Each function's
deployed zip is unpacked and run, so what runs is what was packaged; the handler gets the
function's environment, a context whose remaining time is real, and is killed at its
timeout with Lambda's ``Sandbox.Timedout`` error, and when its memory passes ``memory_mb``
with ``Runtime.OutOfMemory``; a response over 6 MB fails ``Function.ResponseSizeTooLarge``.
Errors come back as
``{"errorType", "errorMessage"}`` payloads, so Step Functions' Retry/Catch match on them.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path

from moto.awslambda.models import LambdaFunction

from step_patterns_sandbox.lambda_runtime.pool import FunctionVersion, KillFault, WorkerPool

# Installs nest (a test's own runtime inside the session's cloud): each uninstall restores
# the runner that was there before it.
_installed: list[tuple[object, WorkerPool]] = []
MAX_RESPONSE_BYTES = 6_291_556  # Lambda's synchronous response quota ("6 MB")
_unpack_lock = threading.Lock()


def _worker_base_env(endpoint_url: str, region: str) -> dict[str, str]:
    """A clean environment like Lambda's: no developer variables leak into handlers."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TZ") if name in os.environ}
    return {
        **keep,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_SESSION_TOKEN": "sandbox",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _unpacked_code(function: LambdaFunction, code_root: Path) -> Path:
    target = code_root / function.code_sha_256.replace("/", "_")
    with _unpack_lock:
        if not target.exists():
            staging = target.with_suffix(".partial")
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(staging)
            staging.rename(target)
    return target


def response_too_large(size: int) -> dict:
    """Lambda's answer to a response over the quota, as AWS words it (e.g.
    umihico/pythonista-chromeless#11: "Response payload size (9706999 bytes) exceeded maximum
    allowed payload size (6291556 bytes)." with errorType ``Function.ResponseSizeTooLarge``).
    moto's own check (``LambdaResponse.invoke``) already refuses from ~6,000,000 bytes
    (``sys.getsizeof``), without the size: between the two the sandbox is stricter than AWS."""
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({MAX_RESPONSE_BYTES} bytes).",
    }


def peak_memory_mb() -> dict[str, float]:
    """The highest memory (RSS, MB) each function's workers reached in the current runtime."""
    if not _installed:
        return {}
    return {name: round(peak / 2**20, 1) for name, peak in sorted(_installed[-1][1].peak_memory_bytes.items())}


def install(code_root: Path, endpoint_url: str, region: str) -> WorkerPool:
    """Route every moto Lambda invocation in this process to warm worker subprocesses."""
    code_root.mkdir(parents=True, exist_ok=True)
    pool = WorkerPool(_worker_base_env(endpoint_url, region))

    def invoke_in_worker(self: LambdaFunction, event: str | None = None):
        version = FunctionVersion(
            function_arn=self.function_arn,
            handler=self.handler,
            code_dir=str(_unpacked_code(self, code_root)),
            code_sha=self.code_sha_256,
            timeout_s=float(self.timeout),
            memory_mb=int(self.memory_size),
            environment=tuple(sorted((self.environment_vars or {}).items()))
            + (
                ("AWS_LAMBDA_FUNCTION_NAME", self.function_name),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(self.memory_size)),
                ("AWS_LAMBDA_FUNCTION_VERSION", str(self.version)),
                ("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}"),
            ),
        )
        result = pool.invoke(version, event if event is not None else {})
        response = json.dumps(result.payload)
        size = len(response.encode())
        if size > MAX_RESPONSE_BYTES and not result.errored:
            response, result.errored = json.dumps(response_too_large(size)), True
        self.logs_backend.ensure_log_group(self.logs_group_name)
        self.save_logs(result.logs or "(no output)")
        return response, result.errored, result.logs

    _installed.append((LambdaFunction._invoke_lambda, pool))
    LambdaFunction._invoke_lambda = invoke_in_worker
    return pool


def inject_fault(function_name: str, fault: KillFault) -> None:
    """Arm ``fault`` on the function's next invocations in the current runtime."""
    if not _installed:
        raise RuntimeError("no Lambda runtime is installed")
    _installed[-1][1].inject(function_name, fault)


def clear_faults() -> None:
    """Disarm every injected fault not yet taken."""
    for _, pool in _installed:
        pool.clear_faults()


def uninstall() -> None:
    """Stop the latest installed runtime's workers and restore the runner before it."""
    if not _installed:
        return
    previous, pool = _installed.pop()
    LambdaFunction._invoke_lambda = previous
    pool.close()
