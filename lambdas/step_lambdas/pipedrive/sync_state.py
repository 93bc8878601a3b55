"""What we last sent to Pipedrive per external id: the deal id and the content hash.

The state is a replayable journal of small JSON lines ``{"id", "deal", "hash"}`` (later
lines win; ``deal: null`` forgets an id). Two stores:

- :class:`LocalFileSyncState`: one JSON Lines file, appended (fsync'd for creates).
- :class:`S3SyncState`: S3 has no append, so each save is a new small immutable journal
  object (one PUT per create, ~100 bytes) under ``<prefix>/journal/``; :meth:`compact`
  folds the journal into ``<prefix>/snapshot.jsonl`` and deletes exactly the journal
  objects it read, so a writer saving concurrently loses nothing.

Creates are saved durably *before* the worker takes its next record (``durable=True``),
so a rerun after a crash never creates the same deal twice; updates are batched, since
losing one only costs a repeated (idempotent) PATCH.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

FLUSH_EVERY = 200  # batched (non-durable) entries per save


@dataclass(frozen=True)
class StateEntry:
    deal_id: int
    content_hash: str | None


def _entry_line(external_id: str, deal_id: int | None, content_hash: str | None) -> dict[str, Any]:
    return {"id": external_id, "deal": deal_id, "hash": content_hash}


def _replay(lines: Iterable[str], into: dict[str, StateEntry]) -> None:
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash mid-write: that save never completed
        if item.get("deal") is None:
            into.pop(item["id"], None)
        else:
            into[item["id"]] = StateEntry(int(item["deal"]), item.get("hash"))


class SyncState:
    """In-memory view + journal writes. Subclasses implement ``_read_lines``/``_write``/``compact``."""

    def __init__(self) -> None:
        self._entries: dict[str, StateEntry] | None = None
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.saves = 0

    # storage hooks
    def _read_lines(self) -> Iterable[str]:
        raise NotImplementedError

    def _write(self, lines: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def compact(self) -> None:
        raise NotImplementedError

    # public API
    def load(self) -> dict[str, StateEntry]:
        entries: dict[str, StateEntry] = {}
        _replay(self._read_lines(), entries)
        self._entries = entries
        return entries

    def get(self, external_id: str) -> StateEntry | None:
        if self._entries is None:
            self.load()
        return self._entries.get(external_id)  # type: ignore[union-attr]

    def put(self, external_id: str, deal_id: int | None, content_hash: str | None, *,
            durable: bool = False) -> None:
        """Remember (or, with ``deal_id=None``, forget) an id; ``durable`` saves before returning."""
        if self._entries is None:
            self.load()
        with self._lock:
            if deal_id is None:
                self._entries.pop(external_id, None)  # type: ignore[union-attr]
            else:
                self._entries[external_id] = StateEntry(deal_id, content_hash)  # type: ignore[index]
            self._pending.append(_entry_line(external_id, deal_id, content_hash))
            if not durable and len(self._pending) < FLUSH_EVERY:
                return
            batch, self._pending = self._pending, []
        self._save(batch)

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._save(batch)

    def _save(self, batch: list[dict[str, Any]]) -> None:
        self._write(batch)
        with self._lock:
            self.saves += 1


class LocalFileSyncState(SyncState):
    """A JSON Lines file; appends are flushed and fsync'd so a crash keeps every create."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._file_lock = threading.Lock()

    def _read_lines(self) -> Iterable[str]:
        if not self.path.exists():
            return []
        return self.path.read_text(encoding="utf-8").splitlines()

    def _write(self, lines: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        with self._file_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    def compact(self) -> None:
        """Rewrite the file with one line per known id (atomic rename)."""
        self.flush()
        entries = self.load()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self._file_lock:
            with open(tmp, "w", encoding="utf-8") as handle:
                for external_id, entry in entries.items():
                    handle.write(json.dumps(_entry_line(external_id, entry.deal_id, entry.content_hash),
                                            separators=(",", ":")) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)


class S3SyncState(SyncState):
    """Snapshot + immutable journal objects in S3 (see module docstring).

    ``writer_id`` names who writes (e.g. the chunk id) so journal keys are unique and
    readable; keys start with a nanosecond timestamp so listing order is write order.
    Run :meth:`compact` from one place at a time (e.g. the report step after the Map).
    """

    def __init__(self, bucket: str, prefix: str, *, writer_id: str = "local", s3_client: Any = None,
                 read_workers: int = 16) -> None:
        super().__init__()
        if s3_client is None:
            import boto3  # imported lazily: the local store must not need it

            s3_client = boto3.client("s3")
        self.s3 = s3_client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.writer_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in writer_id)
        self.read_workers = read_workers
        self._run = uuid.uuid4().hex[:8]
        self._seq = 0
        self._written: list[str] = []  # this instance's journal objects, in write order

    @property
    def snapshot_key(self) -> str:
        return f"{self.prefix}/snapshot.jsonl"

    @property
    def journal_prefix(self) -> str:
        return f"{self.prefix}/journal/"

    def _get_text(self, key: str) -> str:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return ""
        return body.decode("utf-8")

    def _journal_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.journal_prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def _read_all(self) -> tuple[list[str], list[str]]:
        keys = self._journal_keys()
        with ThreadPoolExecutor(max_workers=self.read_workers) as pool:
            texts = list(pool.map(self._get_text, [self.snapshot_key, *keys]))
        lines = [line for text in texts for line in text.splitlines()]
        return lines, keys

    def _read_lines(self) -> Iterable[str]:
        return self._read_all()[0]

    def _write(self, lines: list[dict[str, Any]]) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        key = f"{self.journal_prefix}{time.time_ns():020d}-{self.writer_id}-{self._run}-{seq:06d}.jsonl"
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data.encode("utf-8"),
                           ContentType="application/x-ndjson")
        with self._lock:
            self._written.append(key)

    def fold(self) -> None:
        """Fold this writer's own journal objects into one (at the end of a chunk segment).

        One object per create keeps every create durable, but the next reader would fetch
        them one by one; folding leaves one object per segment. Safe beside other writers:
        it touches only its own objects, and writers never share an external id. A crash
        between the write and the delete leaves duplicate lines, which replay ignores.
        """
        self.flush()
        with self._lock:
            own, self._written = self._written, []
        if len(own) < 2:
            self._written = own
            return
        with ThreadPoolExecutor(max_workers=self.read_workers) as pool:
            texts = list(pool.map(self._get_text, own))
        key = f"{self.journal_prefix}{time.time_ns():020d}-{self.writer_id}-{self._run}-folded.jsonl"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body="".join(texts).encode("utf-8"),
                           ContentType="application/x-ndjson")
        for start in range(0, len(own), 1000):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in own[start:start + 1000]], "Quiet": True})
        with self._lock:
            self._written.insert(0, key)

    def compact(self) -> None:
        self.flush()
        lines, keys = self._read_all()
        entries: dict[str, StateEntry] = {}
        _replay(lines, entries)
        data = "".join(json.dumps(_entry_line(k, e.deal_id, e.content_hash), separators=(",", ":")) + "\n"
                       for k, e in entries.items())
        self.s3.put_object(Bucket=self.bucket, Key=self.snapshot_key, Body=data.encode("utf-8"),
                           ContentType="application/x-ndjson")
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
        self._entries = entries
