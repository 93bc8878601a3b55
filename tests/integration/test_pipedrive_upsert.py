"""Upserts against the sandbox: idempotent reruns, crash recovery, deadlines, failures, dry run."""

from __future__ import annotations

import time

import pytest

from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings
from step_lambdas.pipedrive import (
    LocalFileSyncState,
    PipedriveClient,
    SlidingWindowLimiter,
    SyncOptions,
    sync_records,
)

TOKEN = "sandbox-token"


@pytest.fixture
def sandbox():
    box = PipedriveSandbox(PipedriveSettings(burst_limit=40, window_s=0.5), host="127.0.0.1", port=0)
    box.start()
    yield box
    box.stop()


def client_for(sandbox, cls=PipedriveClient, window=0.5) -> PipedriveClient:
    return cls(sandbox.base_url, TOKEN, SlidingWindowLimiter(None, window, margin_s=0.02), backoff_base_s=0.02)


def records(n, title="Deal"):
    return [{"external_id": f"EXT-{i:04d}", "title": f"{title} {i}", "value": i, "currency": "EUR",
             "custom_fields": {"Score": i / 2, "Lead source": "warehouse"}} for i in range(n)]


def test_first_sync_then_resync_sends_only_what_changed(sandbox, tmp_path):
    state = tmp_path / "state.jsonl"
    first = sync_records(records(60), client=client_for(sandbox), state=LocalFileSyncState(state))
    s = first.summary
    assert (s.created, s.updated, s.unchanged, s.failed, s.complete) == (60, 0, 0, 0, True)
    assert s.requests == 60 + 2  # dealFields + one listing page + one POST per record

    changed = records(60)
    for i in (3, 17, 42):
        changed[i]["title"] = "renamed"
    again = sync_records(changed, client=client_for(sandbox), state=LocalFileSyncState(state))
    s = again.summary
    assert (s.created, s.updated, s.unchanged) == (0, 3, 57)
    assert s.requests == 1 + 3  # dealFields + one PATCH per changed record
    stats = sandbox.stats()
    assert stats["deals"] == 60 and stats["duplicate_external_ids"] == 0 and stats["responses_429"] == 0


class CrashAfter(PipedriveClient):
    """Simulates the process dying right after a create reached Pipedrive, before it was saved."""

    crash_after = 25

    def create_deal(self, body, **kw):
        deal = super().create_deal(body, **kw)
        if self.crash_after <= 0:
            raise SystemExit("simulated crash")
        self.crash_after -= 1
        return deal


def test_rerun_after_a_crash_mid_file_creates_nothing_twice(sandbox, tmp_path):
    state = tmp_path / "state.jsonl"
    with pytest.raises(SystemExit):
        sync_records(records(80), client=client_for(sandbox, CrashAfter), state=LocalFileSyncState(state),
                     options=SyncOptions(concurrency=4))
    created_before = sandbox.stats()["deals"]
    saved = len(LocalFileSyncState(state).load())
    assert 0 < saved < created_before < 80  # some creates reached Pipedrive but not the state

    rerun = sync_records(records(80), client=client_for(sandbox), state=LocalFileSyncState(state))
    s = rerun.summary
    assert s.failed == 0 and s.complete
    assert s.created == 80 - created_before
    assert s.unchanged == saved  # saved creates are skipped, the unsaved ones found by listing
    assert s.updated == created_before - saved
    stats = sandbox.stats()
    assert stats["deals"] == 80 and stats["duplicate_external_ids"] == 0


def test_faults_after_writes_never_duplicate_or_lose(sandbox, tmp_path):
    sandbox.configure(error_rate_5xx=0.15, reset_rate=0.1, fault_after_write_rate=0.5, seed=7)
    report = sync_records(records(60), client=client_for(sandbox), state=LocalFileSyncState(tmp_path / "s.jsonl"),
                          options=SyncOptions(create_attempts=5))
    s = report.summary
    stats = sandbox.stats()
    assert stats["responses_5xx"] + stats["resets"] > 0
    assert s.created + s.failed == 60 and s.failed == 0, report.failures
    assert stats["deals"] == 60 and stats["duplicate_external_ids"] == 0


def test_deadline_returns_a_cursor_and_the_next_call_finishes(sandbox, tmp_path):
    sandbox.configure(burst_limit=10, window_s=1.0)
    state = tmp_path / "state.jsonl"
    client = client_for(sandbox, window=1.0)
    first = sync_records(records(40), client=client, state=LocalFileSyncState(state),
                         deadline=time.monotonic() + 1.5)
    s1 = first.summary
    assert not s1.complete and 0 < s1.cursor < 40 and s1.stopped.startswith("deadline")
    assert [r.index for r in first.results] == list(range(s1.cursor))
    second = sync_records(records(40), client=client, state=LocalFileSyncState(state), start=s1.cursor)
    s2 = second.summary
    assert s2.complete and s2.cursor == 40 and s2.failed == 0
    assert s1.records + s2.records == 40
    stats = sandbox.stats()
    assert stats["deals"] == 40 and stats["duplicate_external_ids"] == 0 and stats["responses_429"] == 0


def test_bad_records_fail_one_by_one_and_the_rest_go_on(sandbox, tmp_path):
    batch = records(5)
    batch.insert(1, {"external_id": "NO-TITLE"})
    batch.insert(3, {"external_id": "BAD-FIELD", "title": "t", "custom_fields": {"Colour": "red"}})
    batch.append({"external_id": "EXT-0000", "title": "repeat"})
    report = sync_records(batch, client=client_for(sandbox), state=LocalFileSyncState(tmp_path / "s.jsonl"))
    s = report.summary
    assert (s.records, s.created, s.failed) == (8, 5, 3)
    reasons = {r.external_id: r.reasons for r in report.failures}
    assert reasons["NO-TITLE"] == ["title: expected non-empty string, got missing"]
    assert "unknown custom field" in reasons["BAD-FIELD"][0]
    assert "repeat of record 0" in reasons["EXT-0000"][0]
    assert sandbox.stats()["deals"] == 5


def test_dry_run_writes_nothing(sandbox, tmp_path):
    state = tmp_path / "state.jsonl"
    sync_records(records(10), client=client_for(sandbox), state=LocalFileSyncState(state))
    before = state.read_bytes()
    plan = records(15)
    plan[2]["title"] = "changed"
    report = sync_records(plan, client=client_for(sandbox), state=LocalFileSyncState(state),
                          options=SyncOptions(dry_run=True))
    s = report.summary
    assert (s.would_create, s.would_update, s.unchanged, s.created, s.updated) == (5, 1, 9, 0, 0)
    assert state.read_bytes() == before
    by_method = sandbox.stats()["requests_by_method"]
    assert by_method.get("POST") == 10 and "PATCH" not in by_method


@pytest.mark.parametrize("search_lag_s", [0, 60])
def test_existing_deals_are_found_by_search_and_updated_not_duplicated(sandbox, tmp_path, search_lag_s):
    """Deals made a moment ago (e.g. by a run that crashed before saving them) are not in
    search while its index lags: the deals changed in the last ``search_lag_s`` are listed first."""
    sandbox.configure(search_lag_s=search_lag_s)
    client = client_for(sandbox)
    key = sandbox.field_key("External ID")
    made = client.create_deal({"title": "made by hand", "custom_fields": {key: "EXT-0001"}})
    client.create_deal({"title": "decoy", "custom_fields": {sandbox.field_key("Lead source"): "EXT-0002"}})
    report = sync_records(records(3), client=client, state=LocalFileSyncState(tmp_path / "s.jsonl"),
                          options=SyncOptions(lookup="search"))
    by_id = {r.external_id: r for r in report.results}
    assert by_id["EXT-0001"].action == "updated" and by_id["EXT-0001"].deal_id == made["id"]
    assert by_id["EXT-0002"].action == "created"  # a value in another custom field is not a match
    assert sandbox.stats()["duplicate_external_ids"] == 0


def test_a_known_deal_gone_from_pipedrive_is_found_again_or_created_once(sandbox, tmp_path):
    """The state knows deals that no longer exist (PATCH -> 404): one was made again a moment
    ago, by hand, and search does not show it yet: it is found in the deals changed lately."""
    sandbox.configure(search_lag_s=60)
    state = LocalFileSyncState(tmp_path / "s.jsonl")
    state.put("EXT-0000", 9001, "old-hash", durable=True)
    state.put("EXT-0001", 9002, "old-hash", durable=True)
    client = client_for(sandbox)
    remade = client.create_deal({"title": "remade", "custom_fields": {sandbox.field_key("External ID"): "EXT-0001"}})
    report = sync_records(records(2), client=client, state=state)
    by_id = {r.external_id: r for r in report.results}
    assert (by_id["EXT-0000"].action, by_id["EXT-0001"].action) == ("created", "updated")
    assert by_id["EXT-0001"].deal_id == remade["id"]
    stats = sandbox.stats()
    assert stats["deals"] == 2 and stats["duplicate_external_ids"] == 0


def test_deal_id_from_the_warehouse_is_used_directly(sandbox, tmp_path):
    client = client_for(sandbox)
    made = client.create_deal({"title": "old"})
    report = sync_records([{"external_id": "W-1", "title": "new", "deal_id": made["id"]},
                           {"external_id": "W-2", "title": "x", "deal_id": 999999}],
                          client=client, state=LocalFileSyncState(tmp_path / "s.jsonl"))
    first, second = report.results
    assert first.action == "updated" and client.get_deal(made["id"])["title"] == "new"
    assert second.action == "failed" and "404" in second.reasons[0]


def test_a_run_stopped_by_its_progress_callback_sends_only_what_was_in_flight(sandbox, tmp_path):
    from step_lambdas.pipedrive import StopRun

    sandbox.configure(burst_limit=4, window_s=1.0)  # 4 per second: most senders wait for a place
    client = client_for(sandbox, window=1.0)

    def stop_after_three(done, total):
        if done >= 3:
            raise StopRun("the execution was stopped")

    report = sync_records(records(40), client=client, state=LocalFileSyncState(tmp_path / "s.jsonl"),
                          options=SyncOptions(concurrency=8), on_progress=stop_after_three)
    assert isinstance(report.stop_error, StopRun) and not report.summary.complete
    # the 3 done and at most the 4 admitted in that second; without the halt the 8 senders
    # waiting for a place would all have sent too (11)
    assert sandbox.stats()["deals"] <= 3 + 4
    assert client.limiter.halted  # until the next run resumes it
    again = sync_records(records(40), client=client, state=LocalFileSyncState(tmp_path / "s.jsonl"),
                         start=report.summary.cursor)
    assert again.summary.complete and sandbox.stats()["deals"] == 40
    assert sandbox.stats()["duplicate_external_ids"] == 0
