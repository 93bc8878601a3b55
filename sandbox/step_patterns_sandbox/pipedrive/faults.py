"""Seeded draws of latency and faults for each request.

Every request takes the same number of draws from one RNG, in arrival order, so a run of
sequential requests with a given seed always meets the same faults at the same places.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .settings import PipedriveSettings

_5XX_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class FaultPlan:
    inbound_delay_s: float  # before the request reaches the rate limiter (half the round trip)
    outbound_delay_s: float  # before the response leaves (the other half, plus any slowness)
    reset: bool  # close the connection abruptly instead of answering
    error_status: int | None  # answer with this 5xx instead of the real response
    after_write: bool  # for POST/PATCH: inject the fault after the write is committed

    @property
    def faulty(self) -> bool:
        return self.reset or self.error_status is not None


class FaultDice:
    def __init__(self, seed: int):
        self._lock = threading.Lock()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def roll(self, s: PipedriveSettings) -> FaultPlan:
        with self._lock:
            r = self._rng
            jitter_in, jitter_out = r.uniform(-1, 1), r.uniform(-1, 1)
            fault, slow, after, status = r.random(), r.random(), r.random(), r.choice(_5XX_STATUSES)

        def half_trip(jitter: float) -> float:
            return max(0.0, s.latency_ms + jitter * s.jitter_ms) / 2000.0

        reset = fault < s.reset_rate
        error = not reset and fault < s.reset_rate + s.error_rate_5xx
        slow_s = s.slow_ms / 1000.0 if slow < s.slow_rate else 0.0
        return FaultPlan(
            inbound_delay_s=half_trip(jitter_in),
            outbound_delay_s=half_trip(jitter_out) + slow_s,
            reset=reset,
            error_status=status if error else None,
            after_write=after < s.fault_after_write_rate,
        )
