"""PipedriveSandbox: the request pipeline (latency, auth, admission, faults, routes) and its controls."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .api import PipedriveApi, error_body
from .counters import Counters
from .faults import FaultDice, FaultPlan
from .limiter import Decision, RateGate, Verdict
from .schema import DealSchema
from .settings import PipedriveSettings
from .store import DealStore
from .transport import Exchange, SandboxHTTPServer

log = logging.getLogger(__name__)

EXTERNAL_ID_FIELD = "External ID"
JSON = "application/json"
UNAUTHORIZED = {"success": False, "error": "unauthorized access", "errorCode": 401, "error_info": "Please check developers.pipedrive.com"}
BLOCK_PAGE = b"""<!DOCTYPE html>
<html><head><title>Attention Required! | Cloudflare</title></head>
<body><h1>Sorry, you have been blocked</h1>
<p>You are unable to access pipedrive.com: this client kept sending requests after being told to wait.</p>
<p>Error 1020 &middot; Access denied</p></body></html>
"""


class PipedriveSandbox:
    """A Pipedrive-compatible HTTP server for tests, benchmarks and demos (see docs/sandbox-pipedrive.md)."""

    def __init__(self, settings: PipedriveSettings | None = None, host: str = "127.0.0.1", port: int = 0):
        self.settings = settings or PipedriveSettings()
        self.host, self.port = host, port
        self.schema = DealSchema(self.settings.custom_fields)
        self.store = DealStore(self.settings.db_path, self.schema)
        self.api = PipedriveApi(self.store, self.schema)
        self.counters = Counters()
        self.gate = RateGate(1, 1.0, None, None, 0.0)
        self._apply_limits(self.settings)
        self.dice = FaultDice(self.settings.seed)
        self._unix_offset = time.time() - time.monotonic()
        self._server: SandboxHTTPServer | None = None
        self._connections_base = 0  # makes "connections" count from the last reset
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Listen and serve in a background thread; returns the base URL once connectable."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._server = SandboxHTTPServer((self.host, self.port), self._dispatch)
        port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"pipedrive-sandbox-{port}", daemon=True)
        self._thread.start()
        self.base_url = f"http://{self.host}:{port}"
        return self.base_url

    def stop(self) -> None:
        """Stop listening, drop open connections, close the database. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._thread.join(timeout=5)
            self._server = None
        self.store.close()

    def __enter__(self) -> PipedriveSandbox:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- controls (also reachable over HTTP under /_sandbox/) ----------------------------

    def field_key(self, name: str) -> str:
        """Key of the custom deal field called `name` (KeyError when not configured)."""
        return self.schema.key_of(name)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at runtime; returns them (tokens elided). ValueError on bad input."""
        new = self.settings.changed(**changes)
        self._apply_limits(new)
        if new.seed != self.settings.seed:
            self.dice.reseed(new.seed)
        self.settings = new  # one reference swap: each request reads one consistent snapshot
        return new.public_dict()

    def reset(self) -> None:
        """Drop deals (ids restart at 1), counters, windows, blocks and the daily budget."""
        self.store.clear()
        self.gate.reset()
        self.counters.reset()
        self._connections_base = -(self._server.connections_accepted if self._server else 0)
        self.dice.reseed(self.settings.seed)

    def deals_once_quiet(self, quiet_s: float, timeout_s: float = 120.0) -> int:
        """The deal count once no deal was created for ``quiet_s`` seconds (a writer that should
        have stopped has): TimeoutError if deals are still being created after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        last, since = self.store.count(), time.monotonic()
        while time.monotonic() - since < quiet_s:
            if time.monotonic() > deadline:
                raise TimeoutError(f"deals still being created after {timeout_s} s ({last} so far)")
            time.sleep(0.25)
            if (now := self.store.count()) != last:
                last, since = now, time.monotonic()
        return last

    def stats(self, include_times: bool = False) -> dict[str, Any]:
        gate, counts, s = self.gate.snapshot(), self.counters.snapshot(), self.settings
        events = counts["events"]
        external = {f.name: f.key for f in self.schema.custom}.get(EXTERNAL_ID_FIELD)
        out = {
            "requests": counts["requests"],
            "responses_429": events.get("429_burst", 0) + events.get("429_daily", 0),
            "responses_5xx": events.get("5xx_injected", 0),
            "resets": events.get("reset", 0),
            "max_requests_in_window": gate["max_requests_in_window"],
            "window_s": s.window_s,
            "burst_limit": s.burst_limit,
            "deals": self.store.count(),
            "duplicate_external_ids": self.store.duplicates(external) if external else 0,
            "requests_by_method": counts["requests_by_method"],
            # Beyond the agreed interface:
            "admitted": gate["admitted"],
            "max_received_in_window": gate["max_received_in_window"],
            "responses_429_burst": events.get("429_burst", 0),
            "responses_429_daily": events.get("429_daily", 0),
            "responses_403_blocked": events.get("403_blocked", 0),
            "responses_401": events.get("401", 0),
            "blocks": gate["blocks"],
            "daily_budget": s.daily_budget,
            "daily_budget_used": gate["daily_budget_used"],
            "responses_by_status": counts["responses_by_status"],
            "connections": self._connections_base + (self._server.connections_accepted if self._server else 0),
        }
        if include_times:
            out["request_times"] = [t + self._unix_offset for t in gate["admitted_times"]]
        return out

    def _apply_limits(self, s: PipedriveSettings) -> None:
        self.gate.configure(s.burst_limit, s.window_s, s.daily_budget, s.block_after_ignored_429, s.block_duration_s)
        self.store.search_lag_s = s.search_lag_s

    # --- request pipeline ------------------------------------------------------------------

    def _dispatch(self, ex: Exchange) -> None:
        try:
            body = ex.read_body()
            url = urlsplit(ex.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            if body is None:
                ex.close_connection = True
                ex.reply(411, _json(error_body("send the body with a Content-Length header")), JSON)
            elif url.path.startswith("/_sandbox/"):
                self._control(ex, url.path, query, body)
            else:
                self._api_request(ex, url.path, query, body)
        except (ConnectionError, TimeoutError):
            ex.close_connection = True  # the client went away mid-request
        except Exception as exc:  # a sandbox bug: answer 500 rather than hang the client
            log.exception("pipedrive sandbox failed on %s %s", ex.command, urlsplit(ex.path).path)
            ex.close_connection = True
            ex.reply(500, _json(error_body(f"sandbox internal error: {exc!r}")), JSON)

    def _api_request(self, ex: Exchange, path: str, query: dict[str, str], body: bytes) -> None:
        s = self.settings
        plan = self.dice.roll(s)
        _sleep(plan.inbound_delay_s)
        self.counters.request(ex.command)
        token = ex.headers.get("x-api-token") or query.get("api_token")
        if token not in s.tokens:
            return self._answer(ex, plan, 401, _json(UNAUTHORIZED), _limit_headers(s, None), "401")
        route = self.api.resolve(ex.command, path)
        decision = self.gate.admit(token, s.costs.get(route.operation, 0), time.monotonic(), *_budget_day())
        headers = _limit_headers(s, decision)
        if decision.verdict is Verdict.BLOCKED:
            # Cloudflare answers, not Pipedrive: HTML and none of Pipedrive's headers.
            return self._answer(ex, plan, 403, BLOCK_PAGE, [], "403_blocked", "text/html; charset=UTF-8")
        if decision.verdict is Verdict.OVER_DAILY:
            body_429 = error_body("daily request budget exceeded", errorCode=429)
            return self._answer(ex, plan, 429, _json(body_429), headers, "429_daily")
        if decision.verdict is Verdict.OVER_BURST:
            body_429 = error_body("Request over limit", errorCode=429)
            return self._answer(ex, plan, 429, _json(body_429), headers, "429_burst")
        fault_later = route.writes and plan.after_write
        if plan.faulty and not fault_later:
            return self._inject(ex, plan, headers)
        status, payload = route.run(query, body)
        if plan.faulty:
            return self._inject(ex, plan, headers)
        self._answer(ex, plan, status, _json(payload), headers)

    def _inject(self, ex: Exchange, plan: FaultPlan, headers: list[tuple[str, str]]) -> None:
        _sleep(plan.outbound_delay_s)
        if plan.reset:
            self.counters.event("reset")
            ex.abort()
            return
        body = _json(error_body("Internal server error (injected by the sandbox)", errorCode=plan.error_status))
        self._answer(ex, plan, plan.error_status, body, headers, "5xx_injected", delay=False)

    def _answer(self, ex: Exchange, plan: FaultPlan, status: int, body: bytes, headers: list[tuple[str, str]],
                event: str | None = None, content_type: str = JSON, delay: bool = True) -> None:
        if delay:
            _sleep(plan.outbound_delay_s)
        self.counters.answered(status, event)
        ex.reply(status, body, content_type, headers)

    def _control(self, ex: Exchange, path: str, query: dict[str, str], body: bytes) -> None:
        route = (ex.command, path.rstrip("/"))
        if route == ("GET", "/_sandbox/stats"):
            return ex.reply(200, _json(self.stats(include_times=query.get("times") in ("1", "true"))), JSON)
        if route == ("POST", "/_sandbox/reset"):
            self.reset()
            return ex.reply(200, _json({"success": True}), JSON)
        if route == ("GET", "/_sandbox/config"):
            return ex.reply(200, _json({"success": True, "data": self.settings.public_dict()}), JSON)
        if route == ("POST", "/_sandbox/config"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object of settings to change")
                data = self.configure(**changes)
            except ValueError as exc:
                return ex.reply(400, _json({"success": False, "error": str(exc)}), JSON)
            return ex.reply(200, _json({"success": True, "data": data}), JSON)
        ex.reply(404, _json({"success": False, "error": f"no sandbox control {ex.command} {path}; "
                             "have GET /_sandbox/stats, POST /_sandbox/reset, GET|POST /_sandbox/config"}), JSON)


def _limit_headers(s: PipedriveSettings, d: Decision | None) -> list[tuple[str, str]]:
    if d is None:  # unauthenticated: nothing was counted
        headers = [("x-ratelimit-limit", str(s.burst_limit)), ("x-ratelimit-remaining", str(s.burst_limit)),
                   ("x-ratelimit-reset", "0")]
    else:
        headers = [("x-ratelimit-limit", str(d.limit)), ("x-ratelimit-remaining", str(d.remaining)),
                   ("x-ratelimit-reset", str(d.reset_s))]
        if d.retry_after_s is not None:
            headers.append(("Retry-After", str(d.retry_after_s)))
        if d.daily_left is not None:
            headers.append(("x-daily-requests-left", str(d.daily_left)))
    return headers


def _budget_day() -> tuple[dt.date, float]:
    """Today's budget day (UTC) and the seconds until it ends."""
    now = dt.datetime.now(dt.timezone.utc)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    return now.date(), (midnight - now).total_seconds()


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
