"""Pipedrive faults through the chunked iterator: every lead lands once, or the run stops named.

Each drill runs the operator's state machine on the local cloud while the Pipedrive sandbox
misbehaves, then compares the CRM with the warehouse (lost, duplicated, wrong title). Faults
are seeded; the 5xx and reset drills keep one request in flight (``concurrency=1``) because
the sandbox draws its faults in arrival order, so one sender meets them at the same requests
on every run. Rate-limit pressure comes from where it does in production: another
integration sending with the same company token.

The limit is checked on ``max_received_in_window`` (every arrival, refused or not) and on the
429 count: ``max_requests_in_window`` counts admitted requests, which the sandbox itself keeps
under its limit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

import pytest
import requests
from harness import DAY, DAY_SQL, LEADS, day_leads, execution_history, landing

from step_patterns_sandbox.cloud import PIPEDRIVE_TOKEN
from step_lambdas.contract.results import read_segment_results
from step_patterns.operators.base import ExecutionFailed, readable_cause

FAULTS_OFF = {"error_rate_5xx": 0.0, "reset_rate": 0.0, "slow_rate": 0.0}


# --- helpers ---------------------------------------------------------------------------


class Neighbour:
    """Another integration of the same company: it sends ``GET /api/v2/deals`` with our token as
    fast as it gets answers.

    Pipedrive counts its limits per company token, so it takes whatever room the window our
    syncer thinks it has still holds. A polite neighbour waits out each 429's Retry-After; a
    rude one resends at once, which is what earns a token the HTML block page.
    """

    def __init__(self, cloud, *, polite: bool):
        self.url = f"{cloud.endpoints.pipedrive_base_url}/api/v2/deals"
        self.polite = polite
        self.sent = Counter()  # responses by status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="noisy-neighbour", daemon=True)

    def __enter__(self) -> Neighbour:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                response = session.get(self.url, params={"limit": 1}, headers={"x-api-token": PIPEDRIVE_TOKEN},
                                       timeout=10)
                self.sent[response.status_code] += 1
                if response.status_code == 429 and self.polite:
                    self._stop.wait(float(response.headers.get("Retry-After", 1)))


class InBackground:
    """``job.run()`` in a thread, so a drill can change the CRM's behaviour while the execution runs."""

    def __init__(self, job):
        self._outcomes: list = []
        self._thread = threading.Thread(target=lambda: self._outcomes.append(job.run()), daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def outcome(self):
        self._thread.join()
        assert self._outcomes, "job.run() raised in its thread (traceback above)"
        return self._outcomes[0]


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    """Poll ``condition`` until it holds (a synchronisation point, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {timeout_s} s"
        time.sleep(0.01)


def count_injected_faults(monkeypatch, sandbox) -> Counter:
    """Tally the sandbox's injected faults by kind: ``committed create`` is a POST whose deal
    was written before the 5xx/reset (the ambiguous case a blind retry would duplicate)."""
    faults: Counter = Counter()
    inject = sandbox._inject

    def tallying(ex, plan, headers):
        if ex.command == "POST":
            faults["committed create" if plan.after_write else "refused create"] += 1
        else:
            faults[f"{ex.command} refused"] += 1
        return inject(ex, plan, headers)

    monkeypatch.setattr(sandbox, "_inject", tallying)
    return faults


def segments(cloud, job) -> list:
    """The chunk syncer's segment results of this job's run (one per Lambda invocation kept)."""
    prefix = f"step-patterns/runs/reliability/{job.name}/{job.day}"
    return list(read_segment_results(cloud.client("s3"), cloud.endpoints.bucket, prefix))


def lambda_timeouts(cloud, execution_arn: str) -> int:
    """Task failures in the execution's history caused by a Lambda killed at its timeout."""
    return sum(1 for e in execution_history(cloud, execution_arn) if "Timedout" in str(e.get("taskFailedEventDetails", {}).get("error", "")))


@pytest.fixture
def short_syncer_timeout(crm):
    """The chunk syncer's Lambda timeout cut to 43 s: its deadline (40 s before the timeout)
    leaves it about 3 s per invocation, so a chunk takes several segments. Restored afterwards."""
    lambdas = crm.client("lambda")
    name = crm.endpoints.functions["chunk-syncer"]
    before = lambdas.get_function_configuration(FunctionName=name)["Timeout"]
    lambdas.update_function_configuration(FunctionName=name, Timeout=43)
    yield 43
    lambdas.update_function_configuration(FunctionName=name, Timeout=before)


@pytest.fixture
def leads(crm) -> dict[str, str]:
    expected = day_leads(crm, DAY)
    assert len(expected) == LEADS
    return expected


# --- drills ----------------------------------------------------------------------------


def test_429_storm_from_a_neighbour_on_the_same_token(crm, job, leads, observe):
    """Another integration of the company takes every request the window has left, waiting out
    its own 429s, until our syncer has met three 429s of its own: the syncer waits each
    Retry-After out (the edge blocks a token that keeps resending early: it never does) and
    lands every lead once."""
    # Requests in flight when a 429 goes out land after it and count as ignored: 20 leaves room
    # for the syncer's 8 and the neighbour's, not for a sender that resends without waiting.
    crm.pipedrive.configure(block_after_ignored_429=20)
    with Neighbour(crm, polite=True) as neighbour:
        running = InBackground(job)
        syncer_429 = lambda: crm.pipedrive.stats()["responses_429"] - neighbour.sent[429]  # noqa: E731
        wait_until(lambda: syncer_429() >= 3 or running.done)
    outcome = running.outcome()
    time.sleep(crm.pipedrive.settings.window_s)  # let the neighbour's last requests leave the window
    stats = crm.pipedrive.stats()
    assert stats["blocks"] == 0, f"the token was blocked: the syncer resent before Retry-After ({outcome.cause})"
    result = landing(crm, leads)
    report = outcome.output or {}
    observe(fault="429 storm (a neighbour on the same token takes all the room)", status=outcome.status,
            error=outcome.error, lost=len(result.lost), duplicates=len(result.duplicated),
            syncer_429=report.get("responses_429"), syncer_requests=report.get("requests"),
            neighbour_requests=sum(neighbour.sent.values()), neighbour_429=neighbour.sent[429],
            responses_429=stats["responses_429"], responses_403_blocked=stats["responses_403_blocked"],
            seconds=outcome.seconds)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert outcome.report["responses_429"] > 0, "the neighbour never pushed the syncer into a 429: no storm"
    assert stats["responses_403_blocked"] == 0
    assert outcome.report["created"] == LEADS and outcome.report["failed"] == 0
    assert result.perfect, result


def test_limit_lowered_mid_run_is_learned_from_the_responses(crm, job, leads, observe):
    """Pipedrive lowers the limit from 100 to 30 per 2 s once the first chunk is in: the syncer
    reads the new x-ratelimit-limit from its next response and keeps under it (no 429 at all),
    where a syncer that kept its own 90 would send the second chunk's burst into 429s."""
    job.rate = "90/2s"  # its own warm client: the lowered limit it learns stays out of other tests
    running = InBackground(job)
    wait_until(lambda: crm.pipedrive.stats()["deals"] >= job.chunk_size)  # first chunk in, nothing in flight
    crm.pipedrive.configure(burst_limit=30)
    outcome = running.outcome()
    time.sleep(crm.pipedrive.settings.window_s)  # room in the window for reading the CRM
    stats = crm.pipedrive.stats()
    result = landing(crm, leads)
    observe(fault="limit lowered mid-run (100 -> 30 per 2 s)", status=outcome.status, lost=len(result.lost),
            duplicates=len(result.duplicated), deals_when_lowered=job.chunk_size,
            responses_429=stats["responses_429"], report=_counts(outcome.output), seconds=outcome.seconds)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert stats["responses_429"] == 0, "the syncer kept sending at its old limit"
    assert outcome.report["created"] == LEADS and outcome.report["failed"] == 0
    assert result.perfect, result


def _one_at_a_time_under(crm, job, leads, monkeypatch, **faults_settings):
    """One request in flight (so the seeded faults hit the same requests every run), the faults
    on for the run only: (outcome, stats, landing, injected faults by kind, POSTs sent)."""
    job.concurrency = 1
    faults = count_injected_faults(monkeypatch, crm.pipedrive)
    crm.pipedrive.configure(**faults_settings)
    outcome = job.run()
    crm.pipedrive.configure(**FAULTS_OFF)
    stats = crm.pipedrive.stats()
    return outcome, stats, landing(crm, leads), faults, stats["requests_by_method"]["POST"]


def test_5xx_bursts_ambiguous_creates_are_looked_up_not_posted_twice(crm, job, leads, observe, monkeypatch):
    """A quarter of the responses are 5xx, half of those on creates after the deal was written:
    each ambiguous create is looked up by its external id before any resend."""
    outcome, stats, result, faults, posts = _one_at_a_time_under(
        crm, job, leads, monkeypatch, error_rate_5xx=0.25, fault_after_write_rate=0.5, seed=12)
    observe(fault="5xx bursts (25%, half of the failed creates already written)", status=outcome.status,
            lost=len(result.lost), duplicates=len(result.duplicated), responses_5xx=stats["responses_5xx"],
            committed_creates_answered_5xx=faults["committed create"],
            refused_creates=faults["refused create"], refused_reads=faults["GET refused"], posts=posts,
            report=_counts(outcome.output), seconds=outcome.seconds)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert faults["committed create"] > 0 and faults["refused create"] > 0, faults
    # A blind resend would have posted each committed create again (and duplicated it).
    assert posts == LEADS + faults["refused create"]
    assert outcome.report["created"] == LEADS and outcome.report["failed"] == 0
    assert result.perfect, result


@pytest.mark.parametrize("lag_s", [5, 60])
def test_unanswered_creates_are_not_posted_again_while_search_lags(crm, job, leads, observe, monkeypatch, lag_s):
    """Pipedrive's search trails its database by ``lag_s``; 30 % of the requests are reset, every
    reset create after its deal was written (its answer is lost). The syncer looks each such
    create up at once (its backoff is under a second): search cannot show the deal yet, the
    deals list can. 20 leads: 0 duplicates, each reported created once, the rerun finds all
    unchanged; nothing waits for the lag."""
    few = 20
    job.sql = DAY_SQL.rstrip() + f"\n    LIMIT {few}"
    expected = {lead: leads[lead] for lead in sorted(leads)[:few]}
    outcome, stats, result, faults, posts = _one_at_a_time_under(
        crm, job, expected, monkeypatch, search_lag_s=lag_s, reset_rate=0.3, fault_after_write_rate=1.0, seed=3)
    rerun = job.run()
    after_rerun = landing(crm, expected)
    observe(fault=f"create answers lost after the write (reset), search {lag_s} s behind", status=outcome.status,
            lost=len(result.lost), duplicates=len(result.duplicated), committed_creates_reset=faults["committed create"],
            refused_reads=faults["GET refused"], posts=posts, report=_counts(outcome.output),
            rerun=_counts(rerun.output), seconds=round(outcome.seconds + rerun.seconds, 1))

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert faults["committed create"] > 0, faults
    assert result.duplicated == [], f"posted again while search lagged: {result.duplicated}"
    assert posts == few, "a create whose deal was written was posted again"
    assert outcome.report["created"] == few and outcome.report["failed"] == 0
    assert result.perfect, result
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert (rerun.report["unchanged"], rerun.report["created"], rerun.report["updated"]) == (few, 0, 0)
    assert after_rerun.perfect, after_rerun


def test_create_refused_three_times_is_reported_and_the_rerun_lands_it(crm, job, leads, observe):
    """The syncer gives a create three tries (each after a lookup saw no deal); a lead whose
    three creates are all refused is reported failed -- the task fails on it -- and the rerun lands it."""
    job.concurrency = 1
    crm.pipedrive.configure(error_rate_5xx=0.25, fault_after_write_rate=0.5, seed=11)
    first = job.run()
    crm.pipedrive.configure(**FAULTS_OFF)
    after_first = landing(crm, leads)
    failures = job.failures()
    with pytest.raises(ExecutionFailed) as task_error:  # what the Airflow task shows (max_failed_records=0)
        job.operator().result_from_output(first.report)
    rerun = job.run()
    result = landing(crm, leads)
    observe(fault="5xx bursts: a create refused 3 times", status=first.status, failed_first_run=len(failures),
            reasons=[r for f in failures for r in f["reasons"]], task_error=str(task_error.value),
            lost_first_run=len(after_first.lost), rerun=_counts(rerun.output), lost=len(result.lost),
            duplicates=len(result.duplicated), seconds=round(first.seconds + rerun.seconds, 1))

    assert first.status == "SUCCEEDED", first.cause
    assert first.report["failed"] == len(failures) >= 1
    # Nothing is lost silently: every lead missing from the CRM is in failures.jsonl, with why.
    assert sorted(f["external_id"] for f in failures) == after_first.lost
    assert all(f["reasons"] for f in failures)
    assert after_first.duplicated == [] and after_first.wrong_title == []
    assert "records failed" in str(task_error.value) and "failures.jsonl" in str(task_error.value)
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.report["created"] == len(failures) and rerun.report["unchanged"] == LEADS - len(failures)
    assert rerun.report["failed"] == 0
    assert result.perfect, result


def test_connection_resets_after_writes_lose_and_duplicate_nothing(crm, job, leads, observe, monkeypatch):
    """A quarter of the connections are reset, half of those on creates after the deal was written."""
    outcome, stats, result, faults, posts = _one_at_a_time_under(
        crm, job, leads, monkeypatch, reset_rate=0.25, fault_after_write_rate=0.5, seed=7)
    observe(fault="connection resets (25%, half of the reset creates already written)", status=outcome.status,
            lost=len(result.lost), duplicates=len(result.duplicated), resets=stats["resets"],
            committed_creates_reset=faults["committed create"], refused_creates=faults["refused create"],
            refused_reads=faults["GET refused"], posts=posts, report=_counts(outcome.output),
            seconds=outcome.seconds)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert faults["committed create"] > 0 and faults["refused create"] > 0, faults
    assert stats["resets"] == sum(faults.values())
    assert posts == LEADS + faults["refused create"]
    assert outcome.report["created"] == LEADS and outcome.report["failed"] == 0
    assert result.perfect, result


def test_slow_responses_stay_under_the_limit_and_segment_before_the_timeout(crm, job, leads, observe,
                                                                          short_syncer_timeout):
    """A third of the responses take 1 s, the limit is 24 requests per 2 s, and each invocation has
    about 3 s for one chunk of all 60 leads: the syncer stops at its deadline and returns its
    cursor (the machine calls it again from there) instead of being killed at the Lambda
    timeout, and never sends over the limit."""
    crm.pipedrive.configure(burst_limit=24, slow_rate=0.3, slow_ms=1000, seed=11)
    job.rate, job.chunk_size, job.concurrency = "24/2s", LEADS, 4
    outcome = job.run()
    crm.pipedrive.configure(**FAULTS_OFF)
    stats = crm.pipedrive.stats()
    result = landing(crm, leads)
    kept = segments(crm, job)
    killed = lambda_timeouts(crm, outcome.execution_arn)
    observe(fault="slow responses (30% take 1 s) with a 43 s syncer timeout", status=outcome.status,
            lost=len(result.lost), duplicates=len(result.duplicated), segments=len(kept),
            chunks=outcome.report["chunks"] if outcome.output else None, lambda_timeouts=killed,
            max_received_in_window=stats["max_received_in_window"], burst_limit=stats["burst_limit"],
            responses_429=stats["responses_429"], report=_counts(outcome.output), seconds=outcome.seconds)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert killed == 0
    assert len(kept) > outcome.report["chunks"], "every chunk fit in one invocation: the deadline was never met"
    assert all(s.cursor_end > s.cursor_start for s in kept)
    # The server counts every arrival, refused or not: the syncer never even tried past the limit.
    assert stats["responses_429"] == 0 and stats["max_received_in_window"] <= stats["burst_limit"]
    assert outcome.report["created"] == LEADS and outcome.report["failed"] == 0
    assert result.perfect, result


def test_html_403_block_fails_named_and_the_rerun_lands_the_rest(crm, job, leads, observe):
    """Mid-run, a rude neighbour on the same token resends through its 429s until the edge blocks
    the token: the execution fails as ChunkSyncFailed(BlockedByServer) saying what to do; once the
    block lifts, a rerun lands the rest and re-creates nothing."""
    crm.pipedrive.configure(block_after_ignored_429=3, block_duration_s=3)
    running = InBackground(job)
    wait_until(lambda: crm.pipedrive.stats()["deals"] >= 5)
    with Neighbour(crm, polite=False):
        wait_until(lambda: crm.pipedrive.stats()["blocks"] >= 1)
    first = running.outcome()
    blocked = crm.pipedrive.stats()
    time.sleep(crm.pipedrive.settings.block_duration_s)  # the block lifts
    before_rerun = landing(crm, leads)
    landed_before = LEADS - len(before_rerun.lost)
    rerun = job.run()
    result = landing(crm, leads)
    observe(fault="HTML 403 block (a neighbour ignored its 429s)", status=first.status, error=first.error,
            cause=readable_cause(first.cause), landed_before_block=landed_before,
            responses_403_blocked=blocked["responses_403_blocked"], rerun=_counts(rerun.output),
            lost=len(result.lost), duplicates=len(result.duplicated),
            seconds=round(first.seconds + rerun.seconds, 1))

    assert first.status == "FAILED" and first.error == "ChunkSyncFailed", (first.status, first.cause)
    assert "BlockedByServer" in first.cause and "HTTP 403 with an HTML page" in first.cause
    assert "Stop all syncs with this token, wait, and lower --rate / --concurrency" in first.cause
    assert blocked["responses_403_blocked"] >= 1
    assert 0 < landed_before < LEADS, "the block did not come mid-run"
    assert before_rerun.duplicated == [] and before_rerun.wrong_title == []
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.report["unchanged"] == landed_before and rerun.report["created"] == LEADS - landed_before
    assert result.perfect, result


def test_daily_budget_exhausted_mid_run_fails_named_and_the_next_day_lands_the_rest(crm, job, leads, observe):
    """The company's daily token budget runs out part way: the execution fails as
    ChunkSyncFailed(DailyBudgetExceeded) saying to rerun after the reset; what landed is there
    once; the next day's rerun creates only the rest and reports the others unchanged."""
    # Costs: dealFields 20 and one listing 10 per chunk, 5 per create: 250 runs out in the second chunk.
    crm.pipedrive.configure(daily_budget=250)
    first = job.run()
    spent = crm.pipedrive.stats()
    # The next day: a fresh allowance (reading the CRM needs budget too).
    crm.pipedrive.configure(daily_budget=spent["daily_budget_used"] + 1000)
    before_rerun = landing(crm, leads)
    landed_before = LEADS - len(before_rerun.lost)
    rerun = job.run()
    result = landing(crm, leads)
    observe(fault="daily budget exhausted mid-run", status=first.status, error=first.error,
            cause=readable_cause(first.cause), daily_budget=250, budget_used=spent["daily_budget_used"],
            responses_429_daily=spent["responses_429_daily"], landed_before_reset=landed_before,
            rerun=_counts(rerun.output), lost=len(result.lost), duplicates=len(result.duplicated),
            seconds=round(first.seconds + rerun.seconds, 1))

    assert first.status == "FAILED" and first.error == "ChunkSyncFailed", (first.status, first.cause)
    assert "DailyBudgetExceeded" in first.cause and "daily request budget" in first.cause
    assert "rerun after the daily reset" in first.cause
    assert spent["responses_429_daily"] >= 1 and spent["responses_403_blocked"] == 0
    assert 0 < landed_before < LEADS, "the budget did not run out mid-run"
    assert before_rerun.duplicated == [] and before_rerun.wrong_title == []
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.report["unchanged"] == landed_before and rerun.report["created"] == LEADS - landed_before
    assert result.perfect, result


def _counts(report: dict | None) -> dict | None:
    """The report's record counts (the figures a user reads), without its locations."""
    if report is None:
        return None
    return {k: report[k] for k in ("records", "created", "updated", "unchanged", "failed", "requests",
                                   "responses_429")}
