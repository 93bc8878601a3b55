"""Pipedrive's request admission: rolling-window burst limit, daily budget, Cloudflare-like block.

Time is passed in (seconds on a monotonic clock) so the arithmetic is testable without
sleeping. A rolling window is any half-open interval [s, s + window_s): a request at time t
is admitted only if fewer than burst_limit admitted requests of its token lie in
(t - window_s, t]. That bounds every rolling window, not only fixed buckets.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    ADMITTED = "admitted"
    OVER_BURST = "over_burst"  # 429 Request over limit
    OVER_DAILY = "over_daily"  # 429 daily request budget exceeded
    BLOCKED = "blocked"  # HTML 403: the token ignored too many 429s


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    limit: int  # x-ratelimit-limit
    remaining: int  # x-ratelimit-remaining
    reset_s: int  # x-ratelimit-reset: seconds until the oldest counted request leaves the window
    retry_after_s: int | None = None  # Retry-After on 429
    daily_left: int | None = None  # x-daily-requests-left (None when no budget is set)


@dataclass
class _TokenState:
    admitted: deque = field(default_factory=deque)  # admission times inside the current window
    received: deque = field(default_factory=deque)  # every authenticated arrival inside the window
    retry_deadline: float | None = None  # Retry-After deadline of the latest 429 not yet judged
    ignored_streak: int = 0  # 429s in a row answered by a request before their Retry-After
    blocked_until: float = -math.inf
    max_admitted_in_window: int = 0
    max_received_in_window: int = 0


class RateGate:
    """Thread-safe admission control for all tokens of one sandbox (one Pipedrive company)."""

    def __init__(self, burst_limit: int, window_s: float, daily_budget: int | None,
                 block_after_ignored_429: int | None, block_duration_s: float):
        self._lock = threading.Lock()
        self.configure(burst_limit, window_s, daily_budget, block_after_ignored_429, block_duration_s)
        self.reset()

    def configure(self, burst_limit: int, window_s: float, daily_budget: int | None,
                  block_after_ignored_429: int | None, block_duration_s: float) -> None:
        with self._lock:
            self.burst_limit = burst_limit
            self.window_s = window_s
            self.daily_budget = daily_budget
            self.block_after_ignored_429 = block_after_ignored_429
            self.block_duration_s = block_duration_s

    def reset(self) -> None:
        with self._lock:
            self._tokens: dict[str, _TokenState] = {}
            self._budget_day: object = None
            self._budget_used = 0
            self._admitted_times: list[float] = []
            self._blocks = 0

    def admit(self, token: str, cost: int, now: float, day: object, seconds_to_day_end: float) -> Decision:
        """Decide on one request of `token` arriving at `now`; record it when admitted.

        `day` identifies the budget day (the budget restarts when it changes) and
        `seconds_to_day_end` is the Retry-After of a daily-budget refusal.
        """
        with self._lock:
            st = self._tokens.setdefault(token, _TokenState())
            self._prune(st, now)
            st.received.append(now)
            st.max_received_in_window = max(st.max_received_in_window, len(st.received))
            if now < st.blocked_until:
                return self._decision(Verdict.BLOCKED, st, now)
            if st.retry_deadline is not None:
                # The previous 429 is judged by this request: sent before its Retry-After?
                st.ignored_streak = st.ignored_streak + 1 if now < st.retry_deadline else 0
                st.retry_deadline = None
                limit = self.block_after_ignored_429
                if limit is not None and st.ignored_streak >= limit:
                    st.blocked_until = now + self.block_duration_s
                    st.ignored_streak = 0
                    self._blocks += 1
                    return self._decision(Verdict.BLOCKED, st, now)
            if day != self._budget_day:
                self._budget_day, self._budget_used = day, 0
            if self.daily_budget is not None and self._budget_used + cost > self.daily_budget:
                retry = max(1, math.ceil(seconds_to_day_end))
                st.retry_deadline = now + retry
                return self._decision(Verdict.OVER_DAILY, st, now, retry)
            if len(st.admitted) >= self.burst_limit:
                # Room comes back when the oldest counted request leaves the window.
                retry = max(1, math.ceil(st.admitted[-self.burst_limit] + self.window_s - now))
                st.retry_deadline = now + retry
                return self._decision(Verdict.OVER_BURST, st, now, retry)
            st.admitted.append(now)
            st.ignored_streak = 0
            st.max_admitted_in_window = max(st.max_admitted_in_window, len(st.admitted))
            self._budget_used += cost
            self._admitted_times.append(now)
            return self._decision(Verdict.ADMITTED, st, now)

    def snapshot(self) -> dict:
        """Counters for /_sandbox/stats (admission times on the caller's clock)."""
        with self._lock:
            states = self._tokens.values()
            return {
                "max_requests_in_window": max((s.max_admitted_in_window for s in states), default=0),
                "max_received_in_window": max((s.max_received_in_window for s in states), default=0),
                "admitted": len(self._admitted_times),
                "admitted_times": list(self._admitted_times),
                "daily_budget_used": self._budget_used,
                "blocks": self._blocks,
            }

    def _prune(self, st: _TokenState, now: float) -> None:
        horizon = now - self.window_s
        for log in (st.admitted, st.received):
            while log and log[0] <= horizon:
                log.popleft()

    def _decision(self, verdict: Verdict, st: _TokenState, now: float, retry: int | None = None) -> Decision:
        counted = len(st.admitted)
        reset = math.ceil(st.admitted[0] + self.window_s - now) if counted else 0
        daily_left = None
        if self.daily_budget is not None:
            daily_left = max(0, self.daily_budget - self._budget_used)
        return Decision(verdict, self.burst_limit, max(0, self.burst_limit - counted), max(0, reset),
                        retry, daily_left)
