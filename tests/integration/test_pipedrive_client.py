"""The client against the Pipedrive sandbox: 429, 5xx, resets, HTML 403, daily budget, 4xx."""

from __future__ import annotations

import threading
import time

from datetime import datetime, timezone

import pytest
import requests

from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings
from step_lambdas.pipedrive import (
    AmbiguousWriteError,
    AuthenticationFailed,
    BlockedByServer,
    DailyBudgetExceeded,
    PipedriveClient,
    PipedriveRequestError,
    SlidingWindowLimiter,
)

TOKEN = "sandbox-token"


@pytest.fixture
def sandbox():
    box = PipedriveSandbox(PipedriveSettings(burst_limit=10, window_s=1.0), host="127.0.0.1", port=0)
    box.start()
    yield box
    box.stop()


def make_client(sandbox, limit=None, window=1.0, token=TOKEN, **kw) -> PipedriveClient:
    kw.setdefault("backoff_base_s", 0.02)
    return PipedriveClient(sandbox.base_url, token, SlidingWindowLimiter(limit, window, margin_s=0.02), **kw)


def fill_window(sandbox, n):
    for _ in range(n):
        requests.get(f"{sandbox.base_url}/api/v2/deals", headers={"x-api-token": TOKEN}, timeout=5)


def test_429_pauses_every_sender_for_retry_after_then_succeeds(sandbox):
    client = make_client(sandbox, limit=10)
    fill_window(sandbox, 10)  # another client used the whole window
    started = time.monotonic()
    results = []
    threads = [threading.Thread(target=lambda: results.append(client.request("GET", "/api/v2/deals")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 3 and all(r["success"] for r in results)
    assert client.responses_429 >= 1
    assert time.monotonic() - started >= 1.0  # Retry-After (>= 1 s) was honoured
    stats = sandbox.stats()
    assert stats["blocks"] == 0 and stats["responses_403_blocked"] == 0


def test_limit_is_learned_from_the_server_and_never_exceeded(sandbox):
    client = make_client(sandbox, limit=None)  # starts at 20 per window, server says 10
    client.request("GET", "/api/v1/dealFields")
    assert client.limiter.limit == 10
    threads = [threading.Thread(target=lambda: [client.request("GET", "/api/v2/deals") for _ in range(6)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    stats = sandbox.stats()
    assert stats["responses_429"] == 0 and stats["max_requests_in_window"] <= 10


def test_5xx_and_resets_on_reads_are_retried(sandbox):
    sandbox.configure(error_rate_5xx=0.3, reset_rate=0.2, seed=3)
    client = make_client(sandbox, limit=10, max_retries=8)
    for _ in range(10):
        assert client.request("GET", "/api/v2/deals")["success"]
    stats = sandbox.stats()
    assert stats["responses_5xx"] + stats["resets"] > 0
    assert client.retries >= stats["responses_5xx"] + stats["resets"]


def test_a_create_that_may_have_been_applied_is_not_blindly_retried(sandbox):
    sandbox.configure(error_rate_5xx=1.0, fault_after_write_rate=1.0)
    client = make_client(sandbox, limit=10)
    with pytest.raises(AmbiguousWriteError, match="may have been applied"):
        client.create_deal({"title": "t"})
    assert sandbox.stats()["deals"] == 1  # it was applied: a blind retry would have duplicated it
    assert client.requests == 1


def test_validation_errors_are_not_retried(sandbox):
    client = make_client(sandbox, limit=10)
    with pytest.raises(PipedriveRequestError) as caught:
        client.create_deal({"title": "t", "value": "12"})
    assert caught.value.status == 400 and client.requests == 1


def test_html_403_stops_the_run_with_a_clear_error(sandbox):
    sandbox.configure(block_after_ignored_429=2, burst_limit=1, window_s=5.0)
    for _ in range(4):  # a rogue client ignoring Retry-After gets the token blocked
        requests.get(f"{sandbox.base_url}/api/v2/deals", headers={"x-api-token": TOKEN}, timeout=5)
    client = make_client(sandbox, limit=1, window=5.0)
    with pytest.raises(BlockedByServer, match="HTML page"):
        client.request("GET", "/api/v2/deals")


def test_daily_budget_exceeded_stops_the_run(sandbox):
    sandbox.configure(daily_budget=12)  # list costs 10
    client = make_client(sandbox, limit=10)
    client.request("GET", "/api/v2/deals")
    with pytest.raises(DailyBudgetExceeded, match="daily request budget"):
        client.request("GET", "/api/v2/deals")


def test_bad_token_stops_the_run_and_is_never_in_the_message(sandbox):
    client = make_client(sandbox, limit=10, token="wrong-secret-token")
    with pytest.raises(AuthenticationFailed) as caught:
        client.request("GET", "/api/v2/deals")
    assert "wrong-secret-token" not in str(caught.value) and "wrong-secret-token" not in repr(client)


def test_cursor_paging_and_search(sandbox):
    sandbox.configure(search_lag_s=0)  # search semantics here; its lag is the next test's
    client = make_client(sandbox, limit=10)
    key = sandbox.field_key("External ID")
    for i in range(3):
        client.create_deal({"title": f"d{i}", "custom_fields": {key: f"X-{i}"}})
    pages = list(client.iter_deal_pages(custom_fields=[key], page_size=2))
    assert [len(p) for p in pages] == [2, 1]
    assert [d["custom_fields"][key] for p in pages for d in p] == ["X-0", "X-1", "X-2"]
    hits = client.search_deals("X-1")
    assert [h["id"] for h in hits] == [pages[0][1]["id"]]
    fields = client.deal_fields()
    assert any(f["key"] == key and f["name"] == "External ID" for f in fields)


def test_deals_changed_since_are_listed_before_search_shows_them(sandbox):
    sandbox.configure(search_lag_s=60)
    client = make_client(sandbox, limit=10)
    key = sandbox.field_key("External ID")
    client.create_deal({"title": "old", "custom_fields": {key: "X-0"}})
    since = client.server_time()  # on Pipedrive's clock (its Date header), whole seconds
    made = client.create_deal({"title": "new", "custom_fields": {key: "X-1"}})
    assert client.search_deals("X-1") == []  # the index has not caught up
    listed = [d for page in client.iter_deal_pages(custom_fields=[key], updated_since=since) for d in page]
    assert made["id"] in [d["id"] for d in listed]
    bound = datetime.fromtimestamp(int(since), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(d["update_time"] >= bound for d in listed)
    with pytest.raises(ValueError, match="objects must be one of"):
        next(client.iter_pages("leads"))
