"""Sync state stores (local file, S3 journal), token sources, --rate parsing."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from moto import mock_aws

from step_lambdas.pipedrive import sync_state as state_module
from step_lambdas.contract.rate import parse_rate
from step_lambdas.pipedrive.sync_state import LocalFileSyncState, S3SyncState
from step_lambdas.pipedrive.token import TokenNotConfigured, TokenSecretNotFound, clear_token_cache, load_api_token


def test_local_state_survives_a_new_process_and_compacts(tmp_path):
    path = tmp_path / "state.jsonl"
    state = LocalFileSyncState(path)
    state.load()
    state.put("A", 1, "h1", durable=True)  # durable: on disk before put returns
    assert "A" in path.read_text()
    state.put("B", 2, "h2")
    state.put("A", 1, "h1b")
    state.flush()
    state.put("B", None, None)  # forget B (deal deleted)
    state.flush()
    with open(path, "a") as handle:
        handle.write('{"id": "C", "de')  # a write cut short by a crash
    again = LocalFileSyncState(path)
    entries = again.load()
    assert {k: (e.deal_id, e.content_hash) for k, e in entries.items()} == {"A": (1, "h1b")}
    again.compact()
    assert path.read_text().splitlines() == [json.dumps({"id": "A", "deal": 1, "hash": "h1b"}, separators=(",", ":"))]


def test_local_state_missing_file_is_empty_and_not_created(tmp_path):
    state = LocalFileSyncState(tmp_path / "none.jsonl")
    assert state.load() == {}
    state.flush()
    assert not (tmp_path / "none.jsonl").exists()


def test_non_durable_puts_are_batched(tmp_path, monkeypatch):
    monkeypatch.setattr(state_module, "FLUSH_EVERY", 3)
    state = LocalFileSyncState(tmp_path / "s.jsonl")
    state.load()
    state.put("A", 1, "h")
    state.put("B", 2, "h")
    assert state.saves == 0
    state.put("C", 3, "h")
    assert state.saves == 1


@mock_aws
def test_s3_state_journal_then_compaction_keeps_concurrent_writes():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="sync-bucket")
    writer = S3SyncState("sync-bucket", "sync/pipedrive", writer_id="chunk-0001", s3_client=s3)
    writer.load()
    writer.put("A", 1, "h1", durable=True)  # one small object per create
    writer.put("B", 2, "h2", durable=True)
    journal = s3.list_objects_v2(Bucket="sync-bucket", Prefix="sync/pipedrive/journal/")["Contents"]
    assert len(journal) == 2 and all("chunk-0001" in o["Key"] for o in journal)

    other = S3SyncState("sync-bucket", "sync/pipedrive", writer_id="chunk-0002", s3_client=s3)
    assert set(other.load()) == {"A", "B"}
    other.put("A", 1, "h1-new", durable=True)  # later write wins on replay
    writer.compact()
    assert "Contents" not in s3.list_objects_v2(Bucket="sync-bucket", Prefix="sync/pipedrive/journal/")
    fresh = S3SyncState("sync-bucket", "sync/pipedrive", s3_client=s3).load()
    assert {k: (e.deal_id, e.content_hash) for k, e in fresh.items()} == {"A": (1, "h1-new"), "B": (2, "h2")}


@mock_aws
def test_a_writer_folds_its_own_journal_into_one_object_and_leaves_others_alone():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="sync-bucket")
    mine = S3SyncState("sync-bucket", "state", writer_id="chunk-0001", s3_client=s3)
    theirs = S3SyncState("sync-bucket", "state", writer_id="chunk-0002", s3_client=s3)
    for n in range(5):
        mine.put(f"M{n}", n, "h", durable=True)
    theirs.put("T0", 100, "h", durable=True)
    mine.fold()

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sync-bucket", Prefix="state/journal/")["Contents"]]
    assert len([k for k in keys if "chunk-0001" in k]) == 1  # five creates, one object
    assert len([k for k in keys if "chunk-0002" in k]) == 1  # the other writer's object untouched
    loaded = S3SyncState("sync-bucket", "state", s3_client=s3).load()
    assert {k: e.deal_id for k, e in loaded.items()} == {**{f"M{n}": n for n in range(5)}, "T0": 100}
    mine.put("M5", 5, "h", durable=True)  # the writer goes on after folding
    mine.fold()
    assert len([o for o in s3.list_objects_v2(Bucket="sync-bucket", Prefix="state/journal/")["Contents"]
                if "chunk-0001" in o["Key"]]) == 1
    assert set(S3SyncState("sync-bucket", "state", s3_client=s3).load()) == {f"M{n}" for n in range(6)} | {"T0"}


def test_token_from_env_or_secret(monkeypatch):
    clear_token_cache()
    assert load_api_token(env={"PIPEDRIVE_API_TOKEN": " tok "}) == "tok"
    with pytest.raises(TokenNotConfigured, match="PIPEDRIVE_API_TOKEN"):
        load_api_token(env={})

    calls = []

    class FakeSecrets:
        def get_secret_value(self, SecretId):
            calls.append(SecretId)
            return {"SecretString": json.dumps({"api_token": "from-json"})}

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pd"
    assert load_api_token(arn, secrets_client=FakeSecrets()) == "from-json"
    assert load_api_token(arn, secrets_client=FakeSecrets()) == "from-json"
    assert calls == [arn]  # cached per container


@mock_aws
def test_token_raw_secret_string_via_secrets_manager():
    clear_token_cache()
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    arn = sm.create_secret(Name="pd-raw", SecretString="raw-token")["ARN"]
    assert load_api_token(arn, secrets_client=sm) == "raw-token"
    bad = sm.create_secret(Name="pd-bad", SecretString='{"token": "x"}')["ARN"]
    with pytest.raises(TokenNotConfigured, match='"api_token"'):
        load_api_token(bad, secrets_client=sm)


@mock_aws
def test_token_errors_name_the_secret_arn_never_its_value():
    clear_token_cache()
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    empty = sm.create_secret(Name="pd-empty", SecretString='{"api_token": ""}')["ARN"]
    with pytest.raises(TokenNotConfigured, match=f'^secret {re.escape(empty)}: .*no string "api_token" key'):
        load_api_token(empty, secrets_client=sm)
    missing = empty.replace("pd-empty", "pd-missing")
    with pytest.raises(TokenSecretNotFound, match=f"^the Pipedrive token secret {re.escape(missing)} does not exist"):
        load_api_token(missing, secrets_client=sm)


def test_a_refused_token_is_read_again_from_its_secret_by_the_next_invocation():
    # A warm chunk syncer keeps one client per secret; after a 401 it drops it (and the cached
    # token), so a secret corrected in place is used without waiting for the container to end.
    from step_lambdas.chunk_sync import forget_client, pipedrive_client
    from step_lambdas.contract.events import ChunkSyncRequest

    clear_token_cache()
    reads = []

    class Secrets:
        token = "refused"

        def get_secret_value(self, SecretId):
            reads.append(SecretId)
            return {"SecretString": self.token}

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-rotated"
    request = ChunkSyncRequest(index=0, key="k", cursor=0, bucket="b", prefix="p", sync_state_prefix="s",
                               base_url="https://pd.invalid", secret_arn=arn, external_id_field="External ID",
                               rate_requests=10, rate_window_s=2.0, concurrency=1)
    secrets = Secrets()
    refused = pipedrive_client(request, secrets)
    assert pipedrive_client(request, secrets) is refused and reads == [arn]  # warm: read once

    secrets.token = "corrected"
    forget_client(request)
    assert pipedrive_client(request, secrets) is not refused and reads == [arn, arn]
    forget_client(request)


@pytest.mark.parametrize("text, expected", [("20/2s", (20, 2.0)), ("80/2", (80, 2.0)), (" 10 / 500ms ", (10, 0.5)),
                                            ("100/2.5s", (100, 2.5))])
def test_parse_rate(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text, message", [("20", "not N/Ws"), ("fast", "not N/Ws"), ("0/2s", "at least 1"),
                                           ("20/0s", "longer than 0"), ("-5/2s", "not N/Ws"), ("", "not N/Ws")])
def test_parse_rate_errors_say_what_was_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rate(text)


def test_deadline_from_lambda_remaining_time_keeps_a_reserve():
    import time

    from step_lambdas.pipedrive import deadline_from_remaining_ms

    now = time.monotonic()
    assert 59.0 <= deadline_from_remaining_ms(100_000, reserve_s=40.0) - now <= 60.5
    assert deadline_from_remaining_ms(10_000, reserve_s=40.0) <= time.monotonic()  # no time: stop at once
