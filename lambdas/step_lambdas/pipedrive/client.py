"""Pipedrive API v2 client: every request goes through one shared limiter, with retries.

Retried: 429 (after pausing every sender for ``Retry-After``), 5xx, timeouts, connection
resets -- with exponential backoff and full jitter. Never retried: other 4xx. Creates are
not idempotent, so a create that failed *after* it may have reached the server raises
:class:`AmbiguousWriteError` for the caller to resolve (look the deal up, then retry).
The API token travels only in the ``x-api-token`` header; it is never logged nor put in
an exception message or a URL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections import Counter
from email.utils import parsedate_to_datetime
from typing import Any, Iterator

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .errors import (
    AmbiguousWriteError,
    AuthenticationFailed,
    BlockedByServer,
    DailyBudgetExceeded,
    DeadlineReached,
    PipedriveError,
    PipedriveRequestError,
    RetriesExhausted,
    SendingHalted,
)
from .limiter import SlidingWindowLimiter

log = logging.getLogger(__name__)

MAX_PAGE = 500
# v2 objects listed with GET /api/v2/<objects> (same filters and cursor for each).
LISTED_OBJECTS = ("deals", "persons", "organizations")


class PipedriveClient:
    """Thin v2 client. Thread-safe: share one instance (and its limiter) across workers."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        limiter: SlidingWindowLimiter,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_retries: int = 5,
        max_rate_limited: int = 20,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
        pool_size: int = 16,
    ) -> None:
        if not api_token:
            raise ValueError("api_token is empty: set PIPEDRIVE_API_TOKEN or the token secret")
        self.base_url = base_url.rstrip("/")
        self._token = api_token
        self.limiter = limiter
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_rate_limited = max_rate_limited
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self._lock = threading.Lock()
        self.requests = 0
        self.responses_429 = 0
        self.retries = 0
        self.sent_per_window: Counter[float] = Counter()  # wall-clock window start -> requests sent
        self._server_offset_s = 0.0  # Pipedrive's clock minus ours, from the last Date header

    def __repr__(self) -> str:  # never show the token
        return f"PipedriveClient(base_url={self.base_url!r}, limit={self.limiter.limit}/{self.limiter.window_s}s)"

    def _count(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)

    def _book_window(self) -> None:
        window_s = self.limiter.window_s
        with self._lock:
            self.sent_per_window[time.time() // window_s * window_s] += 1

    # -- transport ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send one API call (with retries) and return the decoded JSON envelope."""
        failures = 0
        rate_limited = 0
        while True:
            if self.limiter.begin(deadline) is None:
                if self.limiter.halted:
                    raise SendingHalted(f"{method} {path}: not sent, the run is stopping")
                raise DeadlineReached(f"{method} {path}: no send slot before the deadline")
            self._count("requests")
            self._book_window()
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers={"x-api-token": self._token, "accept": "application/json"},
                    timeout=self.timeout,
                )
            except (requests.Timeout, requests.ConnectionError) as error:
                self.limiter.end()
                self.limiter.probe_failed()
                if not idempotent and not _never_sent(error):
                    raise AmbiguousWriteError(
                        f"{method} {path}: {type(error).__name__} after sending; it may have been applied"
                    ) from None
                reason = f"{type(error).__name__}"
            except BaseException:
                self.limiter.end()
                raise
            else:
                self.limiter.end()
                self._learn_limit(response)
                self._learn_clock(response)
                status = response.status_code
                if status == 429:
                    self._count("responses_429")
                    retry_after = _retry_after(response)
                    payload = _json_or_none(response)
                    if payload and "daily" in str(payload.get("error", "")).lower():
                        raise DailyBudgetExceeded(retry_after, response.headers.get("x-daily-requests-left"))
                    # A refused request was not applied: safe to resend, creates included.
                    self.limiter.pause(retry_after if retry_after is not None else self.limiter.window_s)
                    rate_limited += 1
                    if rate_limited > self.max_rate_limited:
                        raise RetriesExhausted(f"{method} {path}: still HTTP 429 after {rate_limited} tries")
                    self._count("retries")
                    continue
                if status < 400:
                    payload = _json_or_none(response)
                    if payload is None:
                        raise PipedriveError(f"{method} {path} -> HTTP {status} with a non-JSON body")
                    return payload
                if status == 401:
                    raise AuthenticationFailed(method, path)
                if status == 403 and _looks_like_html(response):
                    raise BlockedByServer(method, path)
                if status >= 500:
                    if not idempotent:
                        raise AmbiguousWriteError(f"{method} {path} -> HTTP {status}; it may have been applied")
                    reason = f"HTTP {status}"
                else:
                    payload = _json_or_none(response) or {}
                    raise PipedriveRequestError(
                        method, path, status,
                        str(payload.get("error") or response.reason or "error"),
                        str(payload.get("error_info") or ""),
                    )
            failures += 1
            if failures > self.max_retries:
                raise RetriesExhausted(f"{method} {path}: {reason}, {failures} attempts")
            delay = self.retry_delay(failures, deadline, f"{method} {path}: {reason}")
            log.info("%s %s: %s, retry %d in %.2f s", method, path, reason, failures, delay)
            self._count("retries")
            time.sleep(delay)

    def retry_delay(self, failures: int, deadline: float | None, what: str) -> float:
        """Seconds to wait before try ``failures + 1`` (full jitter, doubling up to the cap);
        :class:`DeadlineReached` when waiting would pass ``deadline``."""
        delay = random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (failures - 1)))
        if deadline is not None and time.monotonic() + delay > deadline:
            raise DeadlineReached(f"{what}; no time left to retry")
        return delay

    def _learn_limit(self, response: requests.Response) -> None:
        def number(name: str) -> int | None:
            value = response.headers.get(name, "").strip()
            return int(value) if value.isdigit() else None

        self.limiter.observe(number("x-ratelimit-limit"), number("x-ratelimit-remaining"))

    def _learn_clock(self, response: requests.Response) -> None:
        # The Date header has whole seconds and left the server before we read it: the offset
        # errs early (by < 1 s + the trip), the safe side for an updated_since bound.
        try:
            server = parsedate_to_datetime(response.headers["date"]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError):
            return
        self._server_offset_s = server - time.time()

    def server_time(self) -> float:
        """Unix time on Pipedrive's clock, as its last ``Date`` header told (ours before any answer)."""
        return time.time() + self._server_offset_s

    # -- endpoints ---------------------------------------------------------------------

    def create_deal(self, body: dict[str, Any], *, deadline: float | None = None) -> dict[str, Any]:
        """``POST /api/v2/deals``; raises AmbiguousWriteError when the outcome is unknown."""
        return self.request("POST", "/api/v2/deals", body=body, idempotent=False, deadline=deadline)["data"]

    def update_deal(self, deal_id: int, body: dict[str, Any], *, deadline: float | None = None) -> dict[str, Any]:
        """``PATCH /api/v2/deals/{id}`` (idempotent: same body, same result)."""
        return self.request("PATCH", f"/api/v2/deals/{int(deal_id)}", body=body, deadline=deadline)["data"]

    def get_deal(self, deal_id: int, *, custom_fields: list[str] | None = None,
                 deadline: float | None = None) -> dict[str, Any] | None:
        """``GET /api/v2/deals/{id}``; None when the deal does not exist."""
        params = {"custom_fields": ",".join(custom_fields)} if custom_fields else None
        try:
            return self.request("GET", f"/api/v2/deals/{int(deal_id)}", params=params, deadline=deadline)["data"]
        except PipedriveRequestError as error:
            if error.status in (404, 410):
                return None
            raise

    def iter_deal_pages(self, *, custom_fields: list[str] | None = None, updated_since: float | None = None,
                        page_size: int = MAX_PAGE, deadline: float | None = None) -> Iterator[list[dict[str, Any]]]:
        """``GET /api/v2/deals`` page by page (see :meth:`iter_pages`)."""
        return self.iter_pages("deals", custom_fields=custom_fields, updated_since=updated_since,
                               page_size=page_size, deadline=deadline)

    def iter_pages(self, objects: str, *, custom_fields: list[str] | None = None,
                   updated_since: float | None = None, page_size: int = MAX_PAGE,
                   deadline: float | None = None) -> Iterator[list[dict[str, Any]]]:
        """``GET /api/v2/{deals|persons|organizations}`` page by page (cursor), ascending ids.

        Lists read Pipedrive's primary store, so they show a write at once (search trails it).
        ``updated_since`` (unix time on Pipedrive's clock, see :meth:`server_time`) keeps the
        objects whose ``update_time`` is at or after it. Parameters as in Pipedrive's SDK
        (npm ``pipedrive`` 33.7.0, ``DealsApi.getDeals`` / ``PersonsApi.getPersons`` /
        ``OrganizationsApi.getOrganizations``): ``updated_since`` RFC 3339, ``sort_by``
        id | update_time | add_time, ``sort_direction`` asc | desc, ``custom_fields`` (<= 15
        keys), ``limit`` <= 500, ``cursor``. Sorted by id: a cursor over ids neither repeats nor
        skips an object that changes while we page (an update_time order would move it).
        """
        if objects not in LISTED_OBJECTS:
            raise ValueError(f"objects must be one of {LISTED_OBJECTS}, got {objects!r}")
        params: dict[str, Any] = {"limit": min(page_size, MAX_PAGE)}
        if custom_fields:
            params["custom_fields"] = ",".join(custom_fields)
        if updated_since is not None:
            since = dt.datetime.fromtimestamp(int(updated_since), dt.timezone.utc)  # whole seconds, rounded down
            params.update(updated_since=since.strftime("%Y-%m-%dT%H:%M:%SZ"), sort_by="id", sort_direction="asc")
        while True:
            payload = self.request("GET", f"/api/v2/{objects}", params=params, deadline=deadline)
            yield payload.get("data") or []
            cursor = (payload.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor}

    def search_deals(self, term: str, *, fields: str = "custom_fields", exact_match: bool = True,
                     deadline: float | None = None) -> list[dict[str, Any]]:
        """``GET /api/v2/deals/search``: the ``item`` of every hit (first page, up to 500)."""
        params = {"term": term, "fields": fields, "exact_match": "true" if exact_match else "false",
                  "limit": MAX_PAGE}
        payload = self.request("GET", "/api/v2/deals/search", params=params, deadline=deadline)
        items = ((payload.get("data") or {}).get("items")) or []
        return [hit.get("item", hit) for hit in items]

    def deal_fields(self, *, deadline: float | None = None) -> list[dict[str, Any]]:
        """``GET /api/v1/dealFields`` (v1 envelope, start/limit paging): standard + custom."""
        fields: list[dict[str, Any]] = []
        start = 0
        while True:
            payload = self.request("GET", "/api/v1/dealFields", params={"start": start, "limit": MAX_PAGE},
                                   deadline=deadline)
            fields.extend(payload.get("data") or [])
            pagination = (payload.get("additional_data") or {}).get("pagination") or {}
            if not pagination.get("more_items_in_collection"):
                return fields
            start = int(pagination.get("next_start", start + MAX_PAGE))


def _never_sent(error: Exception) -> bool:
    """True when the request cannot have reached the server (the connection never opened)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare on APIs; fall back to one window


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except (ValueError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "html" in content_type or response.text.lstrip()[:1] == "<"
