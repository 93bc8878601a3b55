"""The sandbox's admission arithmetic on a synthetic clock: exact, no sleeping."""

import math

import pytest

from step_patterns_sandbox.pipedrive.limiter import RateGate, Verdict

DAY = "2026-01-01"


def gate(burst=4, window=2.0, budget=None, block_after=None, block_s=60.0):
    return RateGate(burst, window, budget, block_after, block_s)


def admit(g, t, token="tok", cost=1, day=DAY, to_day_end=3600.0):
    return g.admit(token, cost, t, day, to_day_end)


def test_burst_of_n_plus_5_refuses_exactly_5_with_retry_after():
    g = gate(burst=20, window=2.0)
    decisions = [admit(g, 100.0 + i * 0.001) for i in range(25)]
    verdicts = [d.verdict for d in decisions]
    assert verdicts == [Verdict.ADMITTED] * 20 + [Verdict.OVER_BURST] * 5
    assert [d.remaining for d in decisions[:20]] == list(range(19, -1, -1))
    for refused in decisions[20:]:
        assert refused.remaining == 0 and refused.limit == 20
        assert refused.retry_after_s == 2  # the first admitted request leaves the window after ~2 s
    assert g.snapshot()["max_requests_in_window"] == 20
    assert g.snapshot()["max_received_in_window"] == 25


def test_rolling_window_is_not_fooled_by_bucket_boundaries():
    g = gate(burst=4, window=2.0)
    # Four requests late in the fixed bucket [0, 2), four early in [2, 4): a fixed-bucket
    # limiter would admit all eight within 0.8 s.
    late = [admit(g, t) for t in (1.6, 1.7, 1.8, 1.9)]
    early = [admit(g, t) for t in (2.1, 2.2, 2.3, 2.4)]
    assert all(d.verdict is Verdict.ADMITTED for d in late)
    assert all(d.verdict is Verdict.OVER_BURST for d in early)
    assert early[0].retry_after_s == math.ceil(1.6 + 2.0 - 2.1)
    # Refused requests do not count: room returns as soon as 1.6 leaves (1.6, 3.65].
    assert admit(g, 3.65).verdict is Verdict.ADMITTED
    assert admit(g, 3.66).verdict is Verdict.OVER_BURST
    assert g.snapshot()["max_requests_in_window"] == 4


def test_window_maximum_is_measured_over_every_rolling_window():
    g = gate(burst=10, window=2.0)
    for t in (1.2, 1.5, 2.5, 2.8, 5.0):  # fixed 2 s buckets would see at most 2 per bucket
        assert admit(g, t).verdict is Verdict.ADMITTED
    assert g.snapshot()["max_requests_in_window"] == 4  # (0.8, 2.8] holds 1.2, 1.5, 2.5, 2.8


def test_window_is_half_open_and_per_token():
    g = gate(burst=2, window=2.0)
    assert admit(g, 10.0).verdict is Verdict.ADMITTED
    assert admit(g, 10.5).verdict is Verdict.ADMITTED
    assert admit(g, 11.9).verdict is Verdict.OVER_BURST
    assert admit(g, 11.9, token="other").verdict is Verdict.ADMITTED  # each token has its own window
    assert admit(g, 12.0).verdict is Verdict.ADMITTED  # 10.0 has left (10.0, 12.0]
    assert admit(g, 12.0).verdict is Verdict.OVER_BURST


def test_headers_report_reset_and_remaining():
    g = gate(burst=3, window=2.0)
    d = admit(g, 50.0)
    assert (d.limit, d.remaining, d.reset_s) == (3, 2, 2)
    d = admit(g, 51.2)
    assert (d.remaining, d.reset_s) == (1, 1)  # 50.0 leaves at 52.0: 0.8 s -> 1


def test_daily_budget_refuses_with_large_retry_after_and_restarts_next_day():
    g = gate(burst=100, budget=12)
    assert admit(g, 1.0, cost=5).daily_left == 7
    assert admit(g, 1.1, cost=5).daily_left == 2
    refused = admit(g, 1.2, cost=5, to_day_end=5000.2)
    assert refused.verdict is Verdict.OVER_DAILY
    assert refused.retry_after_s == 5001 and refused.daily_left == 2
    assert admit(g, 1.3, cost=1).verdict is Verdict.ADMITTED  # a cheaper call still fits
    assert admit(g, 2.0, cost=5, day="2026-01-02").daily_left == 7


def test_ignoring_429s_ends_in_a_block_and_honouring_them_does_not():
    g = gate(burst=1, window=2.0, block_after=3, block_s=10.0)
    assert admit(g, 0.0).verdict is Verdict.ADMITTED
    # Each request sent before the previous 429's Retry-After ignores that 429.
    assert [admit(g, t).verdict for t in (0.1, 0.2, 0.3)] == [Verdict.OVER_BURST] * 3
    assert admit(g, 0.4).verdict is Verdict.BLOCKED  # third ignored 429 in a row
    assert admit(g, 9.0).verdict is Verdict.BLOCKED
    assert g.snapshot()["blocks"] == 1
    assert admit(g, 10.5).verdict is Verdict.ADMITTED  # block over, window empty again

    polite = gate(burst=1, window=2.0, block_after=2)
    admit(polite, 0.0)
    for t in (0.5, 2.5, 4.5, 6.5, 8.5):  # each retry waits out the Retry-After it was given
        polite_decision = admit(polite, t)
        assert polite_decision.verdict is not Verdict.BLOCKED


@pytest.mark.parametrize("burst, window", [(1, 0.5), (7, 2.0), (20, 2.0)])
def test_no_rolling_window_ever_holds_more_than_the_limit(burst, window):
    g = gate(burst=burst, window=window)
    times = [i * 0.013 for i in range(2000)]  # offered load far above the limit
    admitted = [t for t in times if admit(g, t).verdict is Verdict.ADMITTED]
    worst = max(sum(1 for u in admitted if t - window < u <= t) for t in admitted)
    assert worst == burst == g.snapshot()["max_requests_in_window"]
