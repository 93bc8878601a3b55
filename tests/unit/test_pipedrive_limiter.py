"""The limiter never admits more than N sends in any rolling window, whoever sends."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings, strategies as st

from step_lambdas.pipedrive.limiter import SlidingWindowLimiter


def _max_in_any_window(times: list[float], window: float) -> int:
    """Largest number of times inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _send_concurrently(limiter: SlidingWindowLimiter, senders: int, per_sender: int) -> list[float]:
    admitted: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        for _ in range(per_sender):
            at = limiter.acquire()
            with lock:
                admitted.append(at)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return admitted


@settings(max_examples=12, deadline=None)
@given(limit=st.integers(1, 6), senders=st.integers(1, 6), per_sender=st.integers(1, 5),
       window=st.sampled_from([0.1, 0.2]))
def test_never_more_than_n_in_any_rolling_window(limit, senders, per_sender, window):
    limiter = SlidingWindowLimiter(limit, window, margin_s=0.0, probe_first=False)
    admitted = _send_concurrently(limiter, senders, per_sender)
    assert len(admitted) == senders * per_sender  # nobody starved
    assert _max_in_any_window(admitted, window) <= limit


def test_saturates_the_limit_rather_than_idling():
    limiter = SlidingWindowLimiter(5, 0.2, margin_s=0.0, probe_first=False)
    admitted = _send_concurrently(limiter, senders=4, per_sender=10)  # 40 sends = 8 windows
    span = max(admitted) - min(admitted)
    # 40 sends at 5 per 0.2 s need just over 7 windows; an idle limiter would take far longer
    assert span < 7 * 0.2 + 0.3


def test_margin_widens_the_window():
    limiter = SlidingWindowLimiter(2, 0.1, margin_s=0.05, probe_first=False)
    admitted = [limiter.acquire() for _ in range(3)]
    assert admitted[2] - admitted[0] >= 0.15 - 1e-6


def test_pause_stops_every_sender_until_retry_after():
    limiter = SlidingWindowLimiter(100, 1.0, margin_s=0.0, probe_first=False)
    paused_at = time.monotonic()
    limiter.pause(0.2)
    admitted = _send_concurrently(limiter, senders=3, per_sender=2)
    assert min(admitted) >= paused_at + 0.2 - 1e-3


def test_learns_the_server_limit_but_never_raises_a_users_limit():
    auto = SlidingWindowLimiter(None, 2.0)
    assert auto.limit == 20  # conservative start: the smallest plan
    auto.observe_limit(80)
    assert auto.limit == 80
    auto.observe_limit(40)
    assert auto.limit == 40

    explicit = SlidingWindowLimiter(30, 2.0)
    explicit.observe_limit(80)
    assert explicit.limit == 30
    explicit.observe_limit(20)
    assert explicit.limit == 20


def test_acquire_gives_up_at_the_deadline_without_booking():
    limiter = SlidingWindowLimiter(1, 10.0, margin_s=0.0, probe_first=False)
    assert limiter.acquire() is not None
    assert limiter.acquire(deadline=time.monotonic() + 0.05) is None


def test_bad_settings_are_refused_with_a_reason():
    import pytest

    with pytest.raises(ValueError, match="limit must be >= 1"):
        SlidingWindowLimiter(0, 2.0)
    with pytest.raises(ValueError, match="window_s must be > 0"):
        SlidingWindowLimiter(5, 0)


def test_a_new_limiter_probes_first_and_books_what_the_server_already_counted():
    limiter = SlidingWindowLimiter(10, 0.3, margin_s=0.0)
    probe = limiter.acquire()
    assert limiter.acquire(deadline=time.monotonic() + 0.1) is None  # others wait for its answer
    observed = time.monotonic()
    limiter.observe(limit=10, remaining=2)  # 8 counted: our probe + 7 sent by someone else
    admitted = [limiter.acquire() for _ in range(4)]
    # 2 fit now; the 3rd waits for the probe to leave the window, the 4th for the others
    assert admitted[1] - observed < 0.05
    assert admitted[2] >= probe + 0.3 - 1e-6
    assert admitted[3] >= observed + 0.3 - 1e-6


def test_a_failed_probe_lets_the_next_sender_probe():
    limiter = SlidingWindowLimiter(10, 1.0, margin_s=0.0)
    limiter.acquire()
    limiter.probe_failed()
    assert limiter.acquire(deadline=time.monotonic() + 0.1) is not None


def test_a_send_in_flight_holds_its_place_until_its_response_then_a_whole_window():
    limiter = SlidingWindowLimiter(2, 0.2, margin_s=0.0, probe_first=False)
    assert limiter.begin() is not None
    assert limiter.begin() is not None
    # both in flight: the window is full however long they take
    assert limiter.begin(deadline=time.monotonic() + 0.3) is None
    limiter.end()
    ended_at = time.monotonic()
    admitted = limiter.begin()
    # the next send waits a whole window after the response, not after the admission
    assert admitted - ended_at >= 0.2 - 1e-3


@settings(max_examples=8, deadline=None)
@given(limit=st.integers(1, 5), senders=st.integers(1, 5), latency=st.sampled_from([0.0, 0.02, 0.05]))
def test_server_side_arrivals_never_exceed_n_whatever_the_send_delay(limit, senders, latency):
    """Sends leave late (a busy CPU) and arrive at any point before their response: booking
    at the response still keeps every server window at N or fewer."""
    import random

    window = 0.1
    limiter = SlidingWindowLimiter(limit, window, margin_s=0.0, probe_first=False)
    arrivals: list[float] = []
    lock = threading.Lock()
    rng = random.Random(limit * 31 + senders)

    def sender() -> None:
        for _ in range(4):
            limiter.begin()
            time.sleep(rng.uniform(0, latency))  # admitted, not yet sent
            arrived = time.monotonic()
            with lock:
                arrivals.append(arrived)
            time.sleep(rng.uniform(0, latency))  # the response travels back
            limiter.end()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(arrivals) == senders * 4
    assert _max_in_any_window(arrivals, window) <= limit


def test_halt_turns_away_the_senders_waiting_for_a_place_and_resume_admits_again():
    limiter = SlidingWindowLimiter(limit=1, window_s=30.0, probe_first=False)
    assert limiter.acquire() is not None  # the one place of the next 30 s
    answers: list[float | None] = []
    waiting = threading.Thread(target=lambda: answers.append(limiter.acquire()))
    waiting.start()
    time.sleep(0.05)
    limiter.halt()
    waiting.join(timeout=2)
    assert answers == [None] and limiter.halted  # turned away at once, not after 30 s
    limiter.resume()
    assert not limiter.halted and limiter.acquire(deadline=time.monotonic() + 0.1) is None  # the window is full
