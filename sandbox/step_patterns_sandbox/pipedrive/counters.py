"""Thread-safe tallies of what the sandbox answered, for /_sandbox/stats."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_method: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._events: Counter[str] = Counter()

    def request(self, method: str) -> None:
        """One API request arrived (whatever its fate)."""
        with self._lock:
            self._requests += 1
            self._by_method[method] += 1

    def answered(self, status: int, event: str | None = None) -> None:
        """A response went out; `event` names a sandbox-made outcome (429 kinds, injected 5xx...)."""
        with self._lock:
            self._by_status[status] += 1
            if event:
                self._events[event] += 1

    def event(self, name: str) -> None:
        """Something that is not a response (a connection reset)."""
        with self._lock:
            self._events[name] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self._requests,
                "requests_by_method": dict(self._by_method),
                "responses_by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "events": dict(self._events),
            }
