"""Create or update one Deal per record with the fewest requests, several in flight.

Plan per record, cheapest first:
1. content hash unchanged since the last sync (sync state)  -> nothing to send;
2. ``deal_id`` in the record, else the deal id in the sync state -> one PATCH;
3. otherwise look the external id up: list every deal once (500 a page, only the
   external-id custom field) or search each miss. Which is cheaper depends on how many
   deals the account has, which we do not know: we list while the pages read are fewer
   than the ids still missing and switch to per-id search otherwise, so lookups never cost
   more than about twice the cheaper choice. An id found nowhere -> one POST.

Pipedrive's search is an index that trails its database (seconds, more under load); lists
read the database. So a search miss is trusted only for deals older than
``SyncOptions.search_lag_s``: before searching, the ids still missing are looked for once
in the deals changed since then (``GET /api/v2/deals?updated_since=``), which finds a deal
created moments ago by a run that crashed before saving it.

Each create is saved to the sync state before its worker takes another record, and a
create whose outcome is unknown (timeout/reset/5xx after sending) is looked up before it
is retried -- in the deals changed since just before the POST, never in search, which
may not show it yet: a rerun after a crash, or a retry, never creates the same deal twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .client import PipedriveClient
from .errors import (
    AmbiguousWriteError,
    DeadlineReached,
    PipedriveError,
    PipedriveRequestError,
    StopRun,
)
from .records import DealRecord, FieldCatalog, InvalidRecord, RecordValidator
from .sync_state import SyncState

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED, FAILED = "created", "updated", "unchanged", "failed"
WOULD_CREATE, WOULD_UPDATE = "would_create", "would_update"
# How long before a POST's send "since just before the POST" starts. The bound is on
# Pipedrive's clock (Date headers, see PipedriveClient.server_time) against update_time, also
# Pipedrive's, in whole seconds: the estimate already errs early; the margin covers the
# edge's clock (Date) differing from the database's (update_time) and an unseen NTP step.
# A minute more of changes to list costs nothing on a quiet account, a page on a busy one.
CREATE_LOOKUP_MARGIN_S = 60.0


@dataclass
class SyncOptions:
    external_id_field: str = "External ID"  # custom deal field (key or name) holding external_id
    concurrency: int = 8                      # requests in flight (workers sharing the limiter)
    dry_run: bool = False                     # plan only: read, never write (Pipedrive or state)
    lookup: str = "auto"                      # "auto" | "list" | "search" (see module docstring)
    create_attempts: int = 3                  # ambiguous-create lookups before giving up
    search_lag_s: float = 300.0               # how far Pipedrive's search may trail its database


@dataclass
class RecordResult:
    index: int
    external_id: str | None
    action: str
    deal_id: int | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class SyncSummary:
    records: int
    created: int
    updated: int
    unchanged: int
    failed: int
    would_create: int
    would_update: int
    requests: int
    responses_429: int
    elapsed_s: float
    cursor: int             # index of the next record to process (== total when complete)
    complete: bool
    stopped: str | None     # why the run stopped early (deadline / stop-the-run error), if it did
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncReport:
    summary: SyncSummary
    results: list[RecordResult]
    stop_error: StopRun | None = None

    @property
    def failures(self) -> list[RecordResult]:
        return [r for r in self.results if r.action == FAILED]


class _NotProcessed(Exception):
    """The record was not (fully) processed before the run stopped: it stays after the cursor."""


class DealSyncer:
    """Upsert records through one client/limiter; reusable across calls (e.g. a warm Lambda)."""

    def __init__(self, client: PipedriveClient, state: SyncState, options: SyncOptions | None = None) -> None:
        self.client = client
        self.state = state
        self.options = options or SyncOptions()
        self._stop = threading.Event()
        self._validator: RecordValidator | None = None

    # -- public -----------------------------------------------------------------------

    def run(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        start: int = 0,
        deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        """Process ``records[start:]``; stop sending at ``deadline`` (``time.monotonic()`` clock).

        Returns a report whose ``summary.cursor`` is the index of the first record not
        processed: call again with ``start=cursor`` to continue. The report covers exactly
        ``[start, cursor)``. A few records after the cursor (at most the ones in flight)
        may already have been written when the run stopped; they are in the sync state, so
        the next call finds them unchanged and sends nothing for them. ``on_progress(done,
        total)`` may raise :class:`StopRun` to end the run: requests already queued for a
        place in the rate limit are then not sent.
        """
        began = time.monotonic()
        requests0, r429_0 = self.client.requests, self.client.responses_429
        self._stop.clear()
        self.client.limiter.resume()  # a shared client's limiter may still be halted by an earlier run
        self._stop_reason: Exception | None = None
        self._deadline = deadline
        results: dict[int, RecordResult] = {}
        batch = [(i, r) for i, r in enumerate(records) if i >= start]
        total = start + len(batch)

        try:
            self.state.load()
            validator = self._validator = self._validator or self._build_validator(deadline)
            work = self._plan(batch, validator, results, deadline)
            self._execute(work, results, total, on_progress)
        except (StopRun, DeadlineReached) as error:
            self._halt(error)
        finally:
            if not self.options.dry_run:
                self.state.flush()
        reason = self._stop_reason
        stop_error = reason if isinstance(reason, StopRun) else None
        stopped = None if reason is None else (
            f"{type(reason).__name__}: {reason}" if stop_error else f"deadline: {reason}")

        cursor = start
        while cursor < total and cursor in results:
            cursor += 1
        done = [results[i] for i in range(start, cursor)]
        counts = {a: sum(1 for r in done if r.action == a)
                  for a in (CREATED, UPDATED, UNCHANGED, FAILED, WOULD_CREATE, WOULD_UPDATE)}
        summary = SyncSummary(
            records=len(done), created=counts[CREATED], updated=counts[UPDATED],
            unchanged=counts[UNCHANGED], failed=counts[FAILED],
            would_create=counts[WOULD_CREATE], would_update=counts[WOULD_UPDATE],
            requests=self.client.requests - requests0,
            responses_429=self.client.responses_429 - r429_0,
            elapsed_s=round(time.monotonic() - began, 3), cursor=cursor, complete=cursor >= total,
            stopped=None if cursor >= total and stop_error is None else stopped,
            dry_run=self.options.dry_run,
        )
        return SyncReport(summary, done, stop_error)

    # -- planning ---------------------------------------------------------------------

    def _build_validator(self, deadline: float | None) -> RecordValidator:
        catalog = FieldCatalog.from_deal_fields(self.client.deal_fields(deadline=deadline))
        return RecordValidator(catalog, self.options.external_id_field)

    def _plan(self, batch, validator: RecordValidator, results: dict[int, RecordResult],
              deadline: float | None) -> list[tuple[DealRecord, str, int | None]]:
        """Validate and decide per record: ("update", deal_id) / ("lookup", None) / done."""
        first_seen: dict[str, int] = {}
        work: list[tuple[DealRecord, str, int | None]] = []
        misses: list[DealRecord] = []
        for index, raw in batch:
            checked = validator.validate(raw, index)
            if isinstance(checked, InvalidRecord):
                results[index] = RecordResult(index, checked.external_id, FAILED, reasons=checked.reasons)
                continue
            if checked.external_id in first_seen:
                results[index] = RecordResult(index, checked.external_id, FAILED, reasons=[
                    f"external_id: expected each id once per run, got a repeat of record {first_seen[checked.external_id]}"])
                continue
            first_seen[checked.external_id] = index
            known = self.state.get(checked.external_id)
            if known and known.content_hash == checked.content_hash and checked.deal_id in (None, known.deal_id):
                results[index] = RecordResult(index, checked.external_id, UNCHANGED, known.deal_id)
            elif checked.deal_id is not None:
                work.append((checked, "update", checked.deal_id))
            elif known is not None:
                work.append((checked, "update", known.deal_id))
            else:
                work.append((checked, "lookup", None))
                misses.append(checked)
        if not misses:
            return work
        wanted = {m.external_id for m in misses}
        found, complete = ({}, False) if self.options.lookup == "search" else self._list_external_ids(wanted, deadline)
        if not complete:  # the rest will be searched: first the deals search may not show yet
            found.update(self._changed_lately(wanted - set(found), deadline))
        # complete listing: an id not found does not exist -> create; else search the rest
        return [(rec, "update", found[rec.external_id]) if how == "lookup" and rec.external_id in found
                else (rec, "create", None) if how == "lookup" and complete
                else (rec, how, deal_id)
                for rec, how, deal_id in work]

    def _changed_lately(self, wanted: set[str], deadline: float | None) -> dict[str, int]:
        """:meth:`_changed_since` the search index may not show yet (``search_lag_s`` ago)."""
        return self._changed_since(wanted, self.client.server_time() - self.options.search_lag_s, deadline)

    def _changed_since(self, wanted: set[str], since: float, deadline: float | None) -> dict[str, int]:
        """External id -> deal id among the deals changed at or after ``since`` (Pipedrive's
        clock), read from the deals list, which shows a write at once (search may not)."""
        key = self._validator.external_id_key  # type: ignore[union-attr]
        found: dict[str, int] = {}
        if not wanted:
            return found
        for page in self.client.iter_deal_pages(custom_fields=[key], updated_since=since, deadline=deadline):
            self._match(page, wanted, found)
            if len(found) == len(wanted):
                break
        return found

    def _match(self, page: list[dict[str, Any]], wanted: set[str], found: dict[str, int]) -> None:
        """Add to ``found`` the deals of ``page`` whose external-id field holds a wanted id."""
        key = self._validator.external_id_key  # type: ignore[union-attr]
        for deal in page:
            value = (deal.get("custom_fields") or {}).get(key)
            if isinstance(value, str) and value in wanted and value not in found:
                found[value] = int(deal["id"])  # ascending ids: the oldest deal wins

    def _list_external_ids(self, wanted: set[str], deadline: float | None) -> tuple[dict[str, int], bool]:
        """Map external id -> deal id by listing deals; ``complete`` is False if we stopped early."""
        key = self._validator.external_id_key  # type: ignore[union-attr]
        found: dict[str, int] = {}
        pages = 0
        for page in self.client.iter_deal_pages(custom_fields=[key], deadline=deadline):
            pages += 1
            self._match(page, wanted, found)
            still_missing = len(wanted) - len(found)
            if still_missing == 0:
                return found, True
            if self.options.lookup == "auto" and pages >= still_missing:
                # more pages may follow; searching the rest now costs less than listing on
                log.info("listing stopped after %d pages; %d ids will be searched", pages, still_missing)
                return found, False
        return found, True

    # -- execution --------------------------------------------------------------------

    def _execute(self, work, results, total, on_progress) -> None:
        queue = deque(work)
        in_flight: dict[Future, int] = {}
        done_count = len(results)
        if on_progress:
            on_progress(done_count, total)
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency),
                                thread_name_prefix="pipedrive-sync") as pool:
            while queue or in_flight:
                while (queue and len(in_flight) < 2 * self.options.concurrency and not self._stop.is_set()
                       and not self._past_deadline()):
                    record, how, deal_id = queue.popleft()
                    in_flight[pool.submit(self._process, record, how, deal_id)] = record.index
                if not in_flight:
                    if queue and self._past_deadline() and self._stop_reason is None:
                        self._stop_reason = DeadlineReached("time budget reached before all records were sent")
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = in_flight.pop(future)
                    try:
                        results[index] = future.result()
                    except _NotProcessed:
                        continue
                    done_count += 1
                    if on_progress:
                        try:  # on_progress may stop the run (e.g. its execution was stopped)
                            on_progress(done_count, total)
                        except StopRun as error:
                            self._halt(error)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _halt(self, error: Exception) -> None:
        if self._stop_reason is None:
            self._stop_reason = error
        self._stop.set()
        if isinstance(error, StopRun):  # senders queued for a place must not send after all
            self.client.limiter.halt()

    def _process(self, record: DealRecord, how: str, deal_id: int | None) -> RecordResult:
        if self._stop.is_set():
            raise _NotProcessed()
        try:
            return self._upsert(record, how, deal_id)
        except (StopRun, DeadlineReached) as error:
            self._halt(error)
            raise _NotProcessed() from error
        except PipedriveError as error:
            return RecordResult(record.index, record.external_id, FAILED, deal_id, [str(error)])

    def _upsert(self, record: DealRecord, how: str, deal_id: int | None) -> RecordResult:
        dry = self.options.dry_run
        if how == "lookup":
            deal_id = self._search(record.external_id)
            how = "update" if deal_id is not None else "create"
        if how == "update":
            if dry:
                return RecordResult(record.index, record.external_id, WOULD_UPDATE, deal_id)
            try:
                self.client.update_deal(deal_id, record.body, deadline=self._deadline)  # type: ignore[arg-type]
            except PipedriveRequestError as error:
                if error.status != 404 or record.deal_id is not None:
                    raise  # a deal id given by the warehouse that does not exist is the record's fault
                # the deal we knew was deleted in Pipedrive: forget it and look again
                self.state.put(record.external_id, None, None)
                deal_id = (self._changed_lately({record.external_id}, self._deadline).get(record.external_id)
                           or self._search(record.external_id))
                if deal_id is None:
                    return self._create(record)
                self.client.update_deal(deal_id, record.body, deadline=self._deadline)
            self.state.put(record.external_id, deal_id, record.content_hash)
            return RecordResult(record.index, record.external_id, UPDATED, deal_id)
        if dry:
            return RecordResult(record.index, record.external_id, WOULD_CREATE)
        return self._create(record)

    def _create(self, record: DealRecord) -> RecordResult:
        # Every POST of this record is sent after `since`: a deal any of them made is listed.
        since = self.client.server_time() - CREATE_LOOKUP_MARGIN_S
        for attempt in range(self.options.create_attempts):
            if attempt:  # the server just failed: back off before posting again, as reads do
                time.sleep(self.client.retry_delay(attempt, self._deadline, "create: no answer"))
            try:
                deal = self.client.create_deal(record.body, deadline=self._deadline)
                deal_id = int(deal["id"])
            except AmbiguousWriteError as error:
                log.info("%s; looking the deal up in the deals changed since before the POST", error)
                deal_id = self._changed_since({record.external_id}, since, self._deadline).get(record.external_id)
                if deal_id is None:
                    continue
            self.state.put(record.external_id, deal_id, record.content_hash, durable=True)
            return RecordResult(record.index, record.external_id, CREATED, deal_id)
        return RecordResult(record.index, record.external_id, FAILED, None,
                            [f"create: no answer {self.options.create_attempts} times (timeouts/5xx) and no deal "
                             "with this External ID found after each; rerun to retry, no duplicate will be made"])


    def _search(self, external_id: str) -> int | None:
        """Deal id whose external-id field equals ``external_id`` exactly, else None.

        Search trails Pipedrive's database: a miss means no deal older than the index's lag
        (callers look in the deals changed since then first, see :meth:`_changed_since`).

        Search is case-insensitive and matches any custom field, so a hit is confirmed
        by reading that one field (1 GET, only when there is a hit).
        """
        key = self._validator.external_id_key  # type: ignore[union-attr]
        for item in sorted(self.client.search_deals(external_id, deadline=self._deadline),
                           key=lambda it: int(it.get("id", 0))):
            shown = item.get("custom_fields")
            if isinstance(shown, dict) and key in shown:
                value = shown[key]
            else:
                deal = self.client.get_deal(int(item["id"]), custom_fields=[key], deadline=self._deadline)
                value = ((deal or {}).get("custom_fields") or {}).get(key)
            if value == external_id:
                return int(item["id"])
        return None


def deadline_from_remaining_ms(remaining_ms: int, reserve_s: float = 40.0) -> float:
    """A ``deadline`` for :func:`sync_records` from ``context.get_remaining_time_in_millis()``.

    The deadline stops new sends and retries; a request already in flight may still take its
    read timeout (30 s by default), then the state is flushed: ``reserve_s`` must cover both.
    """
    return time.monotonic() + max(remaining_ms / 1000.0 - reserve_s, 0.0)


def sync_records(
    records: Iterable[Mapping[str, Any]],
    *,
    client: PipedriveClient,
    state: SyncState,
    options: SyncOptions | None = None,
    start: int = 0,
    deadline: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """One-call form of :class:`DealSyncer` (see :meth:`DealSyncer.run`)."""
    return DealSyncer(client, state, options).run(records, start=start, deadline=deadline, on_progress=on_progress)
