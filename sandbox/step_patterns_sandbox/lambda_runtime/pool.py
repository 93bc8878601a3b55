"""Warm worker subprocesses for Lambda functions, one invocation at a time each.

Why subprocesses and not threads: Lambda gives every function its own environment
variables and kills an invocation at its timeout. A thread can do neither (``os.environ``
is process-wide, a thread cannot be killed), so a timed-out handler would keep writing to
Pipedrive behind the caller's back. A warm subprocess per concurrent invocation has
Lambda's semantics: cold start once, warm reuse, killed at the deadline.

Memory is enforced as Lambda does: ``memory_mb`` bounds the whole runtime process (the
interpreter, its imports and the handler's data), and an execution environment whose memory
passes it is killed; the invocation fails ``Runtime.OutOfMemory``. Measured here as the
worker's resident set (Linux ``/proc/<pid>/status``): its high-water mark ``VmHWM`` is polled
every ``MEMORY_POLL_S`` while an invocation runs and read once more when it returns, so a
spike between two polls still fails the invocation. RSS rather than ``RLIMIT_AS``: address
space counts every thread's stack and malloc arena reservations (hundreds of MB that are
never touched), which Lambda's cgroup does not count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from step_patterns_sandbox.lambda_runtime.worker import LOG_END_MARK

IDLE_WORKER_TTL_S = 300.0
MEMORY_POLL_S = 0.01  # how often a running invocation's memory is looked at
CONDITION_POLL_S = 0.01  # how often a conditional fault looks at its condition during an invocation
_WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))


@dataclass(frozen=True)
class FunctionVersion:
    """What identifies one deployable version of a function: a change means new workers."""

    function_arn: str
    handler: str
    code_dir: str
    code_sha: str
    timeout_s: float
    memory_mb: int
    environment: tuple[tuple[str, str], ...]


@dataclass
class KillFault:
    """Kill ``times`` invocations of a function, ending them as ``error_type``
    (``Sandbox.Timedout`` as at a timeout, ``Runtime.ExitError`` as at a crash).

    Either ``after_s`` seconds into each of the next ``times`` invocations, or as soon as
    ``when()`` is true while one runs (looked at every ``CONDITION_POLL_S``): a drill can
    then crash a function at a precise point of its work, e.g. right after its k-th write.
    An invocation that ends before ``when()`` is true is not killed and does not count.
    """

    after_s: float | None = None
    error_type: str = "Sandbox.Timedout"
    times: int = 1
    when: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if (self.after_s is None) == (self.when is None):
            raise ValueError("a KillFault takes exactly one of after_s (a time) or when (a condition)")


@dataclass
class Invocation:
    payload: object
    errored: bool
    logs: str


def out_of_memory(request_id: str) -> dict:
    """Lambda's answer for an environment killed for memory. As AWS reports it (e.g.
    awslabs/aws-deployment-framework#758): ``{"errorType": "Runtime.OutOfMemory",
    "errorMessage": "RequestId: <id> Error: Runtime exited with error: signal: killed"}``
    (before 2024 the errorType was ``Runtime.ExitError``, same message)."""
    return {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


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
        self.memory_limit_bytes = version.memory_mb * 1024 * 1024
        self.peak_bytes = 0

    def _over_memory(self) -> bool:
        self.peak_bytes = max(self.peak_bytes, peak_rss_bytes(self.process.pid))
        return self.peak_bytes > self.memory_limit_bytes

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

    def invoke(self, event: object, deadline_epoch_s: float, cut_at_epoch_s: float | None = None,
               cut_when: Callable[[], bool] | None = None) -> Invocation | None:
        """Run one event; ``None`` when the deadline (or the cut, or ``cut_when()``) came first:
        the caller kills this worker. A worker over its memory kills itself and answers
        ``Runtime.OutOfMemory``."""
        request_id = str(uuid.uuid4())
        self._log_done.clear()
        self.process.stdin.write(json.dumps({
            "event": event,
            "request_id": request_id,
            "function_arn": self.version.function_arn,
            "deadline_epoch_s": deadline_epoch_s,
        }) + "\n")
        self.process.stdin.flush()
        over_memory = False

        def cut() -> bool:
            nonlocal over_memory
            over_memory = self._over_memory()
            return over_memory or (cut_when is not None and cut_when())

        started = time.monotonic()
        line = _readline_until(self._results, cut_at_epoch_s or deadline_epoch_s, cut)
        if over_memory or (line and self._over_memory()):
            logs = self.kill() + self._report(request_id, started) + "\tStatus: error\tError Type: Runtime.OutOfMemory\n"
            return Invocation(payload=out_of_memory(request_id), errored=True, logs=logs)
        if line is None:
            return None
        if not line:  # the worker died (os._exit, OOM kill, segfault)
            self.process.wait()
            self._log_done.wait(1.0)
            return Invocation(
                payload={
                    "errorType": "Runtime.ExitError",
                    # AWS's words (aws/aws-lambda-dotnet#480): "exit status 137", "signal: killed"
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                    + (f"exit status {self.process.returncode}" if self.process.returncode >= 0
                       else f"signal: {signal.strsignal(-self.process.returncode).lower()}"),
                },
                errored=True,
                logs=self._take_logs(),
            )
        self._log_done.wait(1.0)
        result = json.loads(line)
        self.last_used = time.monotonic()
        return Invocation(result["payload"], result["errored"], self._take_logs() + self._report(request_id, started) + "\n")

    def _report(self, request_id: str, started: float) -> str:
        """Lambda's REPORT log line (without its newline): duration, size and peak memory."""
        return (f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms"
                f"\tMemory Size: {self.version.memory_mb} MB\tMax Memory Used: {self.peak_bytes // 2**20} MB")

    def kill(self) -> str:
        self.process.kill()
        self.process.wait()
        self._log_done.wait(1.0)
        return self._take_logs()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def _readline_until(stream, deadline_epoch_s: float, cut_when: Callable[[], bool]) -> str | None:
    """Read one line, or ``None`` if the deadline passes (or ``cut_when()`` is true) first."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            timeout = deadline_epoch_s - time.time()
            if timeout <= 0:
                return None
            if selector.select(min(timeout, MEMORY_POLL_S, CONDITION_POLL_S)):
                return stream.readline()
            if cut_when():
                return None


class WorkerPool:
    """Idle warm workers per function version; a busy worker is never shared."""

    def __init__(self, base_env: dict[str, str]):
        self._base_env = base_env
        self._idle: dict[FunctionVersion, list[_Worker]] = {}
        self._faults: dict[str, KillFault] = {}
        self._lock = threading.Lock()
        self.peak_memory_bytes: dict[str, int] = {}  # function name -> highest worker RSS seen

    def inject(self, function_name: str, fault: KillFault) -> None:
        """Arm a fault for the function's next invocations (tests and reliability drills)."""
        with self._lock:
            self._faults[function_name] = fault

    def clear_faults(self) -> None:
        """Disarm every fault not yet taken (a drill that ended early leaves none behind)."""
        with self._lock:
            self._faults.clear()

    def _faults_for(self, name: str) -> tuple[KillFault | None, KillFault | None]:
        """``(timed, conditional)`` for an invocation starting now: an ``after_s`` fault is
        taken at once (it cuts this invocation); a ``when`` fault stays armed until it fires."""
        with self._lock:
            fault = self._faults.get(name)
            if fault is None or fault.when is not None:
                return None, fault
            self._count_taken_locked(name, fault)
            return fault, None

    def _fires(self, name: str, fault: KillFault) -> bool:
        """Whether the ``when`` fault fires now; if so it is counted as taken."""
        if not fault.when():
            return False
        with self._lock:
            if self._faults.get(name) is not fault:
                return False  # disarmed, or its last kill went to a concurrent invocation
            self._count_taken_locked(name, fault)
            return True

    def _count_taken_locked(self, name: str, fault: KillFault) -> None:
        fault.times -= 1
        if fault.times <= 0:
            del self._faults[name]

    def invoke(self, version: FunctionVersion, event: object) -> Invocation:
        worker = self._checkout(version)
        name = version.function_arn.rsplit(":", 1)[-1]
        timed, conditional = self._faults_for(name)
        fired = False

        def condition_fired() -> bool:
            nonlocal fired
            fired = fired or self._fires(name, conditional)
            return fired

        started = time.time()
        # The handler sees its real deadline; a fault only cuts the invocation short.
        cut_at = started + min(version.timeout_s, timed.after_s) if timed else None
        result = worker.invoke(event, deadline_epoch_s=started + version.timeout_s, cut_at_epoch_s=cut_at,
                               cut_when=condition_fired if conditional else None)
        with self._lock:
            self.peak_memory_bytes[name] = max(self.peak_memory_bytes.get(name, 0), worker.peak_bytes)
        if result is None:
            logs = worker.kill()
            fault = conditional if fired else timed if timed and timed.after_s < version.timeout_s else None
            if fault is not None:
                error_type = fault.error_type
                message = f"killed by an injected fault after {time.time() - started:.2f} s"
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
