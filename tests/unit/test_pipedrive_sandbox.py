"""The Pipedrive sandbox over HTTP: envelopes, validation, auth, rate limits, faults, paging, search."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings

TOKEN = "sandbox-token"
AUTH = {"x-api-token": TOKEN}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def sandbox():
    # Search answers at once here (its semantics are tested); the index lag has its own test.
    sb = PipedriveSandbox(PipedriveSettings(burst_limit=10_000, search_lag_s=0))
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def create(http, sandbox, **fields):
    r = http.post(f"{sandbox.base_url}/api/v2/deals", json={"title": "Deal", **fields})
    assert r.status_code == 200, r.text
    return r.json()["data"]


# --- envelopes and deals --------------------------------------------------------------------

def test_create_get_patch_list_use_v2_envelopes(sandbox, http):
    ext, score = sandbox.field_key("External ID"), sandbox.field_key("Score")
    assert ext == "997e2ba2f5f071340c51dd827327a63c09166c1f"  # sha1("External ID")
    deal = create(http, sandbox, title="Acme", value=1200.5, currency="EUR", stage_id=3, owner_id=7,
                  person_id=11, expected_close_date="2026-03-31", custom_fields={ext: "A-1", score: 4})
    assert deal["id"] == 1 and deal["title"] == "Acme" and deal["value"] == 1200.5
    assert deal["status"] == "open" and deal["pipeline_id"] == 1 and deal["org_id"] is None
    assert RFC3339.match(deal["add_time"]) and RFC3339.match(deal["update_time"])
    assert deal["custom_fields"] == {ext: "A-1", sandbox.field_key("Lead source"): None, score: 4}

    r = http.patch(f"{sandbox.base_url}/api/v2/deals/1", json={"status": "won", "custom_fields": {score: 9.5}})
    body = r.json()
    assert r.status_code == 200 and body["success"] is True
    patched = body["data"]
    assert patched["status"] == "won" and patched["custom_fields"][score] == 9.5
    unchanged = {k: v for k, v in deal.items() if k not in ("status", "custom_fields", "update_time")}
    assert {k: patched[k] for k in unchanged} == unchanged
    assert patched["custom_fields"][ext] == "A-1"  # custom fields not sent are kept

    got = http.get(f"{sandbox.base_url}/api/v2/deals/1", params={"custom_fields": ext}).json()
    assert got["success"] is True and got["data"]["custom_fields"] == {ext: "A-1"}

    listed = http.get(f"{sandbox.base_url}/api/v2/deals").json()
    assert listed["success"] is True and [d["id"] for d in listed["data"]] == [1]
    assert listed["additional_data"] == {"next_cursor": None}


def test_missing_deal_and_unknown_route_use_the_error_envelope(sandbox, http):
    for r in (http.get(f"{sandbox.base_url}/api/v2/deals/99"),
              http.patch(f"{sandbox.base_url}/api/v2/deals/99", json={"title": "x"}),
              http.get(f"{sandbox.base_url}/api/v2/nothing")):
        assert r.status_code == 404
        body = r.json()
        assert body["success"] is False and body["data"] is None and body["additional_data"] is None
        assert body["error"] and body["error_info"]


@pytest.mark.parametrize("payload, where", [
    ({"value": 3}, "title"),
    ({"title": ""}, "title"),
    ({"title": "t", "value": "10"}, "value"),  # v2: no string-to-number coercion
    ({"title": "t", "currency": "eur"}, "currency"),
    ({"title": "t", "status": "closed"}, "status"),
    ({"title": "t", "stage_id": True}, "stage_id"),
    ({"title": "t", "owner_id": 1.5}, "owner_id"),
    ({"title": "t", "expected_close_date": "2026-02-30"}, "expected_close_date"),
    ({"title": "t", "custom_fields": {"0" * 40: "x"}}, "0" * 40),
    ({"title": "t", "custom_fields": {"489f4877244a299131d309f0ca10733c1a41251c": "high"}}, "Score"),
    ({"title": "t", "custom_fields": {"997e2ba2f5f071340c51dd827327a63c09166c1f": 5}}, "External ID"),
    ({"title": "t", "colour": "red"}, "colour"),
    ([{"title": "t"}], "body"),
])
def test_invalid_deals_are_refused_with_400_saying_where(sandbox, http, payload, where):
    r = http.post(f"{sandbox.base_url}/api/v2/deals", json=payload)
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and body["data"] is None and where in body["error"]
    assert sandbox.stats()["deals"] == 0


def test_invalid_json_and_empty_patch_are_refused(sandbox, http):
    r = http.post(f"{sandbox.base_url}/api/v2/deals", data=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    create(http, sandbox)
    r = http.patch(f"{sandbox.base_url}/api/v2/deals/1", json={})
    assert r.status_code == 400 and "at least one field" in r.json()["error"]


# --- auth ------------------------------------------------------------------------------------

def test_requests_without_a_valid_token_get_401(sandbox):
    for headers in ({}, {"x-api-token": "wrong"}):
        r = requests.get(f"{sandbox.base_url}/api/v2/deals", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "unauthorized access", "errorCode": 401,
                            "error_info": "Please check developers.pipedrive.com"}
        assert r.headers["x-ratelimit-limit"] == "10000"
    ok = requests.get(f"{sandbox.base_url}/api/v2/deals", params={"api_token": TOKEN})
    assert ok.status_code == 200
    stats = sandbox.stats()
    assert stats["responses_401"] == 2 and stats["admitted"] == 1


# --- rate limits -----------------------------------------------------------------------------

def test_concurrent_burst_of_n_plus_5_gets_exactly_5_refusals(sandbox):
    sandbox.configure(burst_limit=10, window_s=5.0)
    barrier = threading.Barrier(15)

    def one(_):
        with requests.Session() as s:
            barrier.wait()
            return s.get(f"{sandbox.base_url}/api/v2/deals", headers=AUTH)

    with ThreadPoolExecutor(15) as pool:
        responses = list(pool.map(one, range(15)))
    refused = [r for r in responses if r.status_code == 429]
    admitted = [r for r in responses if r.status_code == 200]
    assert len(refused) == 5 and len(admitted) == 10
    for r in refused:
        assert r.json()["error"] == "Request over limit" and r.json()["errorCode"] == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 5
        assert r.headers["x-ratelimit-remaining"] == "0"
    for r in responses:
        assert r.headers["x-ratelimit-limit"] == "10" and int(r.headers["x-ratelimit-reset"]) >= 1
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in admitted) == list(range(10))
    stats = sandbox.stats()
    assert stats["responses_429"] == 5 and stats["max_requests_in_window"] == 10
    assert stats["requests"] == 15 and stats["requests_by_method"] == {"GET": 15}


def test_second_batch_inside_the_rolling_window_is_refused_and_stats_match_times(sandbox, http):
    sandbox.configure(burst_limit=5, window_s=1.5)
    url = f"{sandbox.base_url}/api/v2/deals"
    first = [http.get(url).status_code for _ in range(5)]
    time.sleep(0.6)  # a fixed-bucket limiter may have rolled over by now; the rolling window has not
    second = [http.get(url).status_code for _ in range(5)]
    time.sleep(1.0)  # now the first batch has left the window
    third = [http.get(url).status_code for _ in range(5)]
    assert first == [200] * 5 and second == [429] * 5 and third == [200] * 5
    stats = requests.get(f"{sandbox.base_url}/_sandbox/stats", params={"times": 1}).json()
    times = stats["request_times"]
    assert len(times) == 10 and times == sorted(times)
    worst = max(sum(1 for u in times if t - 1.5 < u <= t) for t in times)
    assert stats["max_requests_in_window"] == worst == 5
    assert stats["max_received_in_window"] == 10


def test_daily_budget_exhaustion_gives_429_with_large_retry_after(sandbox, http):
    sandbox.configure(daily_budget=12)
    create(http, sandbox)  # costs 5
    create(http, sandbox)  # costs 5
    r = http.get(f"{sandbox.base_url}/api/v2/deals")  # costs 10: over budget
    assert r.status_code == 429
    assert r.json()["error"] == "daily request budget exceeded" and r.json()["errorCode"] == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 86_400 and r.headers["x-daily-requests-left"] == "2"
    r = http.get(f"{sandbox.base_url}/api/v2/deals/1")  # costs 1: still fits
    assert r.status_code == 200 and r.headers["x-daily-requests-left"] == "1"
    stats = sandbox.stats()
    assert stats["responses_429"] == 1 and stats["responses_429_daily"] == 1


def test_ignoring_429s_ends_in_an_html_403(sandbox, http):
    sandbox.configure(burst_limit=1, window_s=5.0, block_after_ignored_429=3, block_duration_s=0.8)
    url = f"{sandbox.base_url}/api/v2/deals"
    statuses = [http.get(url).status_code for _ in range(6)]
    assert statuses == [200, 429, 429, 429, 403, 403]
    blocked = http.get(url)
    assert blocked.status_code == 403 and blocked.headers["Content-Type"].startswith("text/html")
    assert "<html>" in blocked.text and "x-ratelimit-limit" not in blocked.headers
    time.sleep(0.85)
    assert http.get(url).status_code == 429  # block over; the window is still full
    stats = sandbox.stats()
    assert stats["responses_403_blocked"] == 3 and stats["blocks"] == 1


# --- fault injection ---------------------------------------------------------------------------

def _outcomes(sandbox, n):
    out = []
    with requests.Session() as s:
        for _ in range(n):
            try:
                out.append(s.get(f"{sandbox.base_url}/api/v2/deals", headers=AUTH).status_code)
            except requests.ConnectionError:
                out.append("reset")
    return out


def test_5xx_and_resets_are_injected_at_the_seeded_rate_reproducibly(sandbox):
    sandbox.configure(error_rate_5xx=0.25, reset_rate=0.1, seed=7)
    sandbox.reset()
    first = _outcomes(sandbox, 200)
    errors = sum(1 for o in first if o in (500, 502, 503))
    resets = first.count("reset")
    assert 30 <= errors <= 70 and 8 <= resets <= 35  # binomial(200, p) well inside these bounds
    assert errors + resets + first.count(200) == 200
    stats = sandbox.stats()
    assert stats["responses_5xx"] == errors and stats["resets"] == resets
    sandbox.reset()  # reseeds: the same requests meet the same faults
    assert _outcomes(sandbox, 200) == first


def test_a_fault_after_the_write_leaves_the_deal_created(sandbox, http):
    sandbox.configure(error_rate_5xx=1.0, fault_after_write_rate=1.0)
    r = http.post(f"{sandbox.base_url}/api/v2/deals", json={"title": "ghost"})
    assert r.status_code >= 500 and r.json()["success"] is False
    assert sandbox.stats()["deals"] == 1  # the client cannot tell: it must search before retrying
    sandbox.configure(fault_after_write_rate=0.0)
    assert http.post(f"{sandbox.base_url}/api/v2/deals", json={"title": "never"}).status_code >= 500
    assert sandbox.stats()["deals"] == 1


# --- paging and search ------------------------------------------------------------------------

def test_cursor_paging_returns_every_deal_once_in_ascending_order(sandbox, http):
    for i in range(1203):  # seeded straight into the store: 1203 POSTs would only slow the test
        sandbox.store.create(sandbox.schema.validate_create({"title": f"d{i}"}), "2026-01-01T00:00:00Z")
    url = f"{sandbox.base_url}/api/v2/deals"
    seen, cursor, pages = [], None, 0
    while True:
        body = http.get(url, params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
        seen += [d["id"] for d in body["data"]]
        pages += 1
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(range(1, 1204))
    assert len(http.get(url).json()["data"]) == 100  # default limit
    assert http.get(url, params={"limit": 501}).status_code == 400
    assert http.get(url, params={"cursor": "bogus"}).status_code == 400


def test_exact_search_on_external_id_is_case_insensitive_and_whole_value(sandbox, http):
    ext = sandbox.field_key("External ID")
    target = create(http, sandbox, title="one", custom_fields={ext: "ABC-1"})
    create(http, sandbox, title="ten", custom_fields={ext: "abc-10"})
    create(http, sandbox, title="abc-1 in the title only")
    url = f"{sandbox.base_url}/api/v2/deals/search"
    exact = http.get(url, params={"term": "abc-1", "fields": "custom_fields", "exact_match": "true"}).json()
    assert exact["success"] is True and exact["additional_data"] == {"next_cursor": None}
    assert [i["item"]["id"] for i in exact["data"]["items"]] == [target["id"]]
    item = exact["data"]["items"][0]
    assert item["result_score"] > 0 and item["item"]["type"] == "deal" and item["item"]["custom_fields"] == ["ABC-1"]

    partial = http.get(url, params={"term": "abc-1", "fields": "custom_fields"}).json()
    assert sorted(i["item"]["id"] for i in partial["data"]["items"]) == [1, 2]
    everywhere = http.get(url, params={"term": "abc-1"}).json()
    assert sorted(i["item"]["id"] for i in everywhere["data"]["items"]) == [1, 2, 3]
    assert http.get(url, params={"term": "a"}).status_code == 400  # 2 characters unless exact
    assert http.get(url, params={"term": "a", "exact_match": "true"}).status_code == 200
    assert http.get(url, params={"term": "abc", "exact_match": "1"}).status_code == 400  # v2 booleans


def test_search_trails_writes_by_the_lag_while_the_list_shows_them_at_once(sandbox, http):
    now = [1000.0]
    sandbox.store.clock = lambda: now[0]  # the index's clock, moved by hand
    sandbox.configure(search_lag_s=5)
    ext = sandbox.field_key("External ID")
    search_url, list_url = f"{sandbox.base_url}/api/v2/deals/search", f"{sandbox.base_url}/api/v2/deals"

    def search(term):
        params = {"term": term, "fields": "custom_fields", "exact_match": "true"}
        return [i["item"]["id"] for i in http.get(search_url, params=params).json()["data"]["items"]]

    deal = create(http, sandbox, custom_fields={ext: "LAG-1"})
    assert search("LAG-1") == []  # created, not indexed yet
    listed = http.get(list_url, params={"updated_since": deal["update_time"], "custom_fields": ext}).json()["data"]
    assert [(d["id"], d["custom_fields"]) for d in listed] == [(deal["id"], {ext: "LAG-1"})]
    now[0] += 5
    assert search("LAG-1") == [deal["id"]]
    assert http.patch(f"{list_url}/{deal['id']}", json={"custom_fields": {ext: "LAG-2"}}).status_code == 200
    assert (search("LAG-1"), search("LAG-2")) == ([deal["id"]], [])  # the index still has the old value
    now[0] += 5
    assert (search("LAG-1"), search("LAG-2")) == ([], [deal["id"]])
    create(http, sandbox, custom_fields={ext: "LAG-2"})
    assert sandbox.stats()["duplicate_external_ids"] == 1  # counted from the deals, before search shows it


def test_deals_list_filters_by_update_time_and_sorts_with_stable_cursors(sandbox, http):
    for i, added in enumerate(("2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z")):
        sandbox.store.create(sandbox.schema.validate_create({"title": f"d{i}"}), added)
    sandbox.store.update(1, {"title": "d0 again"}, "2026-01-01T00:00:20Z")
    url = f"{sandbox.base_url}/api/v2/deals"

    def ids(**query):  # one deal a page: every answer goes through a cursor
        seen, cursor = [], None
        while True:
            body = http.get(url, params={"limit": 1, **query, **({"cursor": cursor} if cursor else {})}).json()
            assert body["success"] is True, body
            seen += [d["id"] for d in body["data"]]
            cursor = body["additional_data"]["next_cursor"]
            if cursor is None:
                return seen

    assert ids(updated_since="2026-01-01T00:00:05Z") == [1, 2, 3]  # >= since, ascending ids by default
    assert ids(updated_since="2026-01-01T00:00:05.5Z") == [1, 3]  # second precision: a fraction rounds up
    assert ids(updated_since="2026-01-01T01:00:10+01:00") == [1, 3]
    assert ids(updated_until="2026-01-01T00:00:10Z") == [2]
    assert ids(sort_by="update_time", sort_direction="desc") == [1, 3, 2]
    assert ids(sort_by="add_time", sort_direction="desc") == [3, 2, 1]
    assert ids(sort_by="id", sort_direction="desc", updated_since="2026-01-01T00:00:06Z") == [3, 1]
    by_time = http.get(url, params={"limit": 1, "sort_by": "update_time"}).json()["additional_data"]["next_cursor"]
    for bad in ({"sort_by": "title"}, {"sort_direction": "up"}, {"updated_since": "2026-01-01"},
                {"updated_until": "yesterday"}, {"cursor": by_time}):  # a cursor from another order too
        answer = http.get(url, params=bad)
        assert answer.status_code == 400 and next(iter(bad)) in answer.json()["error"], (bad, answer.text)


def test_deal_fields_list_standard_and_custom_fields(sandbox, http):
    body = http.get(f"{sandbox.base_url}/api/v1/dealFields").json()
    assert body["success"] is True
    by_name = {f["name"]: f for f in body["data"]}
    assert by_name["External ID"] == {**by_name["External ID"], "key": sandbox.field_key("External ID"),
                                      "field_type": "varchar"}
    assert by_name["Score"]["field_type"] == "double" and by_name["Title"]["key"] == "title"
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False


# --- stats, reset, config, persistence, connections ---------------------------------------------

def test_stats_count_duplicate_external_ids(sandbox, http):
    ext = sandbox.field_key("External ID")
    for value in ("E-1", "e-1", "E-1", "E-2", "E-2", "E-3", None):
        create(http, sandbox, custom_fields={ext: value})
    assert sandbox.stats()["duplicate_external_ids"] == 3  # two extra E-1, one extra E-2


def test_config_and_reset_over_http_need_no_token(sandbox, http):
    base = sandbox.base_url
    r = requests.post(f"{base}/_sandbox/config", json={"burst_limit": 2, "window_s": 30})
    assert r.status_code == 200 and r.json()["data"]["burst_limit"] == 2
    assert TOKEN not in r.text  # tokens are credentials: never echoed
    assert [http.get(f"{base}/api/v2/deals").status_code for _ in range(3)] == [200, 200, 429]
    for bad in ({"burst_limit": 0}, {"nope": 1}, {"db_path": "/tmp/x.db"}, {"error_rate_5xx": 2}):
        r = requests.post(f"{base}/_sandbox/config", json=bad)
        assert r.status_code == 400 and r.json()["success"] is False and r.json()["error"]
    assert requests.post(f"{base}/_sandbox/reset").status_code == 200
    stats = requests.get(f"{base}/_sandbox/stats").json()
    assert stats["requests"] == 0 and stats["deals"] == 0 and stats["burst_limit"] == 2
    assert "request_times" not in stats
    assert create(http, sandbox)["id"] == 1


def test_deals_persist_in_a_sqlite_file_across_restarts(tmp_path):
    db = str(tmp_path / "deals.sqlite")
    with PipedriveSandbox(PipedriveSettings(db_path=db)) as first, requests.Session() as s:
        s.headers.update(AUTH)
        create(s, first, title="kept")
        create(s, first, title="kept too")
    with PipedriveSandbox(PipedriveSettings(db_path=db)) as second, requests.Session() as s:
        s.headers.update(AUTH)
        assert s.get(f"{second.base_url}/api/v2/deals/2").json()["data"]["title"] == "kept too"
        assert create(s, second)["id"] == 3
        assert second.stats()["deals"] == 3


def test_keep_alive_and_many_concurrent_slow_connections(sandbox):
    sandbox.configure(latency_ms=200)
    n = 120
    barrier = threading.Barrier(n)

    def client(_):
        with requests.Session() as s:
            barrier.wait()
            return [s.get(f"{sandbox.base_url}/api/v2/deals", headers=AUTH).status_code for _ in range(2)]

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(client, range(n)))
    assert all(r == [200, 200] for r in results)
    stats = sandbox.stats(include_times=True)
    assert stats["connections"] == n  # each session reused its connection
    times = stats["request_times"]
    # Served one at a time, 240 requests would need 240 x 0.2 s = 48 s; concurrently well under 1 s.
    assert max(times) - min(times) < 20
