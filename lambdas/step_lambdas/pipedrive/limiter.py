"""A rate limiter that bounds every rolling window: at most N sends in ANY span of W seconds.

Hand-written sliding-window log (one Condition, a deque of send times) rather than a
library: pyrate-limiter's in-memory bucket is also a sliding log, but its rates are fixed at
construction and it has no shared pause, and ``limits``' moving window keys its history by
the rate itself, so learning N from ``x-ratelimit-limit`` or pausing every sender for a
``Retry-After`` would mean rebuilding (and forgetting) the limiter mid-run.

Why not a token bucket: a bucket with burst N refills while it is being drained, so it can
admit close to 2N in one rolling window -- exactly the burst Pipedrive refuses with 429.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

# With begin()/end() (what the client uses) a send is booked when its response arrives,
# which is never earlier than its arrival at the server: the bound holds whatever the
# network jitter or the delay between admission and sending (a busy CPU), so the margin
# only covers clock granularity. Booking at admission (acquire) was measured to let 4 in
# 406 requests arrive within one server window when the CPU was busy, even with a 50 ms margin.
DEFAULT_MARGIN_S = 0.001


class SlidingWindowLimiter:
    """Thread-safe sliding-window log shared by every sender of one API token.

    ``acquire()`` blocks until a send is allowed and books it. ``limit`` is N, ``window_s``
    is W. When ``follow_server`` is true (no limit given by the user), N follows the
    server's ``x-ratelimit-limit``; otherwise the server can only lower it. With
    ``probe_first`` the first send waits for :meth:`observe` before others may go.
    """

    def __init__(
        self,
        limit: int | None = None,
        window_s: float = 2.0,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        default_limit: int = 20,
        probe_first: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 request per window, got {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s}")
        if margin_s < 0:
            raise ValueError(f"margin_s must be >= 0 seconds, got {margin_s}")
        self._limit = limit if limit is not None else default_limit
        self._follow_server = limit is None
        self.window_s = float(window_s)
        self.margin_s = float(margin_s)
        self._clock = clock
        self._sends: deque[float] = deque()
        self._in_flight = 0  # admitted by begin(), not yet ended: they hold a place until then
        self._paused_until = 0.0
        # A new limiter does not know what the server's window already holds (a previous
        # Lambda invocation may have just filled it): one probe request goes first, and its
        # x-ratelimit-remaining seeds the log (see observe) before anyone else sends.
        self._calibrated = not probe_first
        self._probe_out = False
        self._cond = threading.Condition()
        self._halted = False

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def effective_window_s(self) -> float:
        return self.window_s + self.margin_s

    def acquire(self, deadline: float | None = None) -> float | None:
        """Block until a send fits in the window; book it now and return its time (clock units).

        Returns None (booking nothing) if it cannot be admitted before ``deadline``
        (same clock as ``clock``, i.e. ``time.monotonic()`` by default).
        """
        return self._admit(deadline, in_flight=False)

    def begin(self, deadline: float | None = None) -> float | None:
        """Like :meth:`acquire`, but the send holds its place until :meth:`end` books it then.

        This is what the client uses: booking at the response bounds what the *server* sees
        (arrival <= response), however late the request actually left after admission.
        """
        return self._admit(deadline, in_flight=True)

    def end(self) -> None:
        """The response to a :meth:`begin` send arrived (or it failed): book it now."""
        with self._cond:
            self._in_flight -= 1
            self._sends.append(self._clock())
            self._cond.notify_all()

    def halt(self) -> None:
        """Admit nobody until :meth:`resume`: senders waiting for a place give up (``None``).

        A run that must stop (a block page, the daily budget, a stopped execution) calls it so
        the requests already queued for a place are not sent after all.
        """
        with self._cond:
            self._halted = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._halted = False

    @property
    def halted(self) -> bool:
        return self._halted

    def _admit(self, deadline: float | None, in_flight: bool) -> float | None:
        with self._cond:
            while True:
                if self._halted:
                    return None
                now = self._clock()
                horizon = now - self.effective_window_s
                while self._sends and self._sends[0] <= horizon:
                    self._sends.popleft()
                if not self._calibrated and self._probe_out:
                    if deadline is not None and now >= deadline:
                        return None
                    self._cond.wait(timeout=0.05)
                    continue
                taken = len(self._sends) + self._in_flight
                if now >= self._paused_until and taken < self._limit:
                    if in_flight:
                        self._in_flight += 1
                    else:
                        self._sends.append(now)
                    if not self._calibrated:
                        self._probe_out = True
                    return now
                wake_at = self._paused_until if now < self._paused_until else now
                if taken >= self._limit:
                    # the (taken - limit + 1)-th oldest booked send must leave the window first;
                    # if sends in flight hold the places, end() wakes us
                    blocking = taken - self._limit
                    if blocking < len(self._sends):
                        wake_at = max(wake_at, self._sends[blocking] + self.effective_window_s)
                    else:
                        wake_at = max(wake_at, now + 0.05)
                if deadline is not None and wake_at > deadline:
                    return None
                self._cond.wait(timeout=max(wake_at - now, 0.001))

    def pause(self, seconds: float) -> None:
        """Stop every sender for ``seconds`` (a 429's Retry-After): nobody sends until then."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))
            self._cond.notify_all()

    def observe(self, limit: int | None, remaining: int | None) -> None:
        """Learn from a response's ``x-ratelimit-limit`` / ``x-ratelimit-remaining``.

        The first response calibrates: requests the server already counted that are not
        ours are booked now (they leave our log one window later: conservative).
        """
        if limit is not None:
            self.observe_limit(limit)
        with self._cond:
            if self._calibrated:
                return
            if remaining is not None:
                server_limit = limit if limit is not None else self._limit
                foreign = max(0, server_limit - remaining - len(self._sends))
                now = self._clock()
                self._sends.extend([now] * foreign)
            self._calibrated = True
            self._cond.notify_all()

    def probe_failed(self) -> None:
        """The probe got no response (connection error): let the next sender probe."""
        with self._cond:
            if not self._calibrated:
                self._probe_out = False
                self._cond.notify_all()

    def observe_limit(self, server_limit: int) -> None:
        """Learn N from ``x-ratelimit-limit``: adopt it (auto mode) or only ever lower N."""
        if server_limit < 1:
            return
        with self._cond:
            if self._follow_server or server_limit < self._limit:
                changed = server_limit != self._limit
                self._limit = server_limit
                if changed:
                    self._cond.notify_all()
