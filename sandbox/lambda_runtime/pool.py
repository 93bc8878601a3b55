"""Warm worker subprocesses for Lambda functions, one invocation at a time each.

Why subprocesses and not threads: Lambda gives every function its own environment
variables and kills an invocation at its timeout. A thread can do neither (``os.environ``
is process-wide, a thread cannot be killed), so a timed-out handler would keep writing to
Pipedrive behind the caller's back. A warm subprocess per concurrent invocation has
Lambda's semantics: cold start once, warm reuse, killed at the deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from dataclasses import dataclass

from sandbox.lambda_runtime.worker import LOG_END_MARK

IDLE_WORKER_TTL_S = 300.0
_WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))


@dataclass(frozen=True)
class FunctionVersion:
    """What identifies one deployable version of a function: a change means new workers."""

    function_arn: str
    handler: str
    code_dir: str
    code_sha: str
    timeout_s: float
    environment: tuple[tuple[str, str], ...]


@dataclass
class KillFault:
    """Kill the next ``times`` invocations of a function ``after_s`` seconds in, ending them as
    ``error_type`` (``Sandbox.Timedout`` as at a timeout, ``Runtime.ExitError`` as at a crash)."""

    after_s: float
    error_type: str = "Sandbox.Timedout"
    times: int = 1


@dataclass
class Invocation:
    payload: object
    errored: bool
    logs: str


class _Worker:
    def __init__(self, version: FunctionVersion, base_env: dict[str, str]):
        self.version = version
        read_fd, write_fd = os.pipe()
        env = {**base_env, **dict(version.environment)}
        env["_HANDLER"] = version.handler
        env["SANDBOX_CODE_DIR"] = version.code_dir
        env["SANDBOX_RESULT_FD"] = str(write_fd)
        self.process = subprocess.Popen(
            # Run by path: importing the package would import moto into every worker.
            [sys.executable, "-u", _WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self._results = os.fdopen(read_fd, "r")
        self._log_lines: list[str] = []
        self._log_done = threading.Event()
        self._log_lock = threading.Lock()
        threading.Thread(target=self._collect_logs, daemon=True).start()
        self.last_used = time.monotonic()

    def _collect_logs(self) -> None:
        for line in self.process.stderr:
            if line.rstrip("\n") == LOG_END_MARK:
                self._log_done.set()
                continue
            with self._log_lock:
                self._log_lines.append(line)
        self._log_done.set()

    def _take_logs(self) -> str:
        with self._log_lock:
            lines, self._log_lines = self._log_lines, []
        return "".join(lines)

    def invoke(self, event: object, deadline_epoch_s: float, cut_at_epoch_s: float | None = None) -> Invocation | None:
        """Run one event; ``None`` when the deadline (or the cut) passed: the caller kills this worker."""
        request_id = str(uuid.uuid4())
        self._log_done.clear()
        self.process.stdin.write(json.dumps({
            "event": event,
            "request_id": request_id,
            "function_arn": self.version.function_arn,
            "deadline_epoch_s": deadline_epoch_s,
        }) + "\n")
        self.process.stdin.flush()
        line = _readline_until(self._results, cut_at_epoch_s or deadline_epoch_s)
        if line is None:
            return None
        if not line:  # the worker died (os._exit, OOM kill, segfault)
            self.process.wait()
            self._log_done.wait(1.0)
            return Invocation(
                payload={
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with "
                    f"status {self.process.returncode}",
                },
                errored=True,
                logs=self._take_logs(),
            )
        self._log_done.wait(1.0)
        result = json.loads(line)
        self.last_used = time.monotonic()
        return Invocation(result["payload"], result["errored"], self._take_logs())

    def kill(self) -> str:
        self.process.kill()
        self.process.wait()
        self._log_done.wait(1.0)
        return self._take_logs()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def _readline_until(stream, deadline_epoch_s: float) -> str | None:
    """Read one line, or ``None`` if the deadline passes first."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        timeout = deadline_epoch_s - time.time()
        if timeout <= 0 or not selector.select(timeout):
            return None
    return stream.readline()


class WorkerPool:
    """Idle warm workers per function version; a busy worker is never shared."""

    def __init__(self, base_env: dict[str, str]):
        self._base_env = base_env
        self._idle: dict[FunctionVersion, list[_Worker]] = {}
        self._faults: dict[str, KillFault] = {}
        self._lock = threading.Lock()

    def inject(self, function_name: str, fault: KillFault) -> None:
        """Arm a fault for the function's next invocations (tests and reliability drills)."""
        with self._lock:
            self._faults[function_name] = fault

    def clear_faults(self) -> None:
        """Disarm every fault not yet taken (a drill that ended early leaves none behind)."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, version: FunctionVersion) -> KillFault | None:
        name = version.function_arn.rsplit(":", 1)[-1]
        with self._lock:
            fault = self._faults.get(name)
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[name]
            return fault

    def invoke(self, version: FunctionVersion, event: object) -> Invocation:
        worker = self._checkout(version)
        fault = self._take_fault(version)
        started = time.time()
        # The handler sees its real deadline; a fault only cuts the invocation short.
        cut_at = started + min(version.timeout_s, fault.after_s) if fault else None
        result = worker.invoke(event, deadline_epoch_s=started + version.timeout_s, cut_at_epoch_s=cut_at)
        if result is None:
            logs = worker.kill()
            if fault is not None and fault.after_s < version.timeout_s:
                error_type, message = fault.error_type, f"killed by an injected fault after {fault.after_s:.2f} s"
            else:
                error_type, message = "Sandbox.Timedout", f"Task timed out after {version.timeout_s:.2f} seconds"
            return Invocation(payload={"errorType": error_type, "errorMessage": message}, errored=True, logs=logs)
        if worker.alive:
            self._checkin(worker)
        return result

    def _checkout(self, version: FunctionVersion) -> _Worker:
        with self._lock:
            self._reap_locked(version)
            idle = self._idle.get(version, [])
            while idle:
                worker = idle.pop()
                if worker.alive:
                    return worker
        return _Worker(version, self._base_env)

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.setdefault(worker.version, []).append(worker)

    def _reap_locked(self, current: FunctionVersion) -> None:
        """Stop workers of replaced versions of the same function and long-idle ones."""
        now = time.monotonic()
        for version, workers in list(self._idle.items()):
            stale_version = (
                version.function_arn == current.function_arn and version != current
            )
            keep = []
            for worker in workers:
                if stale_version or now - worker.last_used > IDLE_WORKER_TTL_S:
                    worker.kill()
                else:
                    keep.append(worker)
            self._idle[version] = keep

    def close(self) -> None:
        with self._lock:
            for workers in self._idle.values():
                for worker in workers:
                    worker.kill()
            self._idle.clear()
