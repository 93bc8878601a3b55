"""CLI: python -m step_patterns_sandbox.pipedrive --port 8089 --burst-limit 20 --window 2 --db deals.sqlite"""

from __future__ import annotations

import argparse
import signal
import threading

from .sandbox import PipedriveSandbox
from .settings import DEFAULT_SEARCH_LAG_S, PipedriveSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m step_patterns_sandbox.pipedrive", description="Pipedrive-compatible sandbox server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="port (0 = any free port)")
    p.add_argument("--token", action="append", dest="tokens", help="valid API token (repeatable; default sandbox-token)")
    p.add_argument("--burst-limit", type=int, default=20, help="requests per token per rolling window")
    p.add_argument("--window", type=float, default=2.0, help="rolling window in seconds")
    p.add_argument("--daily-budget", type=int, default=None, help="daily token budget (default unlimited)")
    p.add_argument("--latency-ms", type=float, default=0, help="round-trip latency added per request")
    p.add_argument("--jitter-ms", type=float, default=0, help="+- jitter on the latency")
    p.add_argument("--error-rate-5xx", type=float, default=0.0, help="probability of an injected 5xx")
    p.add_argument("--reset-rate", type=float, default=0.0, help="probability of a dropped connection")
    p.add_argument("--slow-rate", type=float, default=0.0, help="probability of a slow response")
    p.add_argument("--slow-ms", type=float, default=0, help="extra delay of a slow response")
    p.add_argument("--search-lag", type=float, default=DEFAULT_SEARCH_LAG_S,
                   help=f"seconds before a write shows in search (default {DEFAULT_SEARCH_LAG_S:g}; 0 = at once)")
    p.add_argument("--block-after-ignored-429", type=int, default=10,
                   help="HTML 403 after this many 429s ignored in a row (0 = never)")
    p.add_argument("--db", default=":memory:", help="SQLite file for deals (default in memory)")
    p.add_argument("--seed", type=int, default=0, help="seed of latency and fault draws")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    settings = PipedriveSettings(
        tokens=tuple(a.tokens or ("sandbox-token",)), burst_limit=a.burst_limit, window_s=a.window,
        daily_budget=a.daily_budget, latency_ms=a.latency_ms, jitter_ms=a.jitter_ms,
        error_rate_5xx=a.error_rate_5xx, reset_rate=a.reset_rate, slow_rate=a.slow_rate, slow_ms=a.slow_ms,
        search_lag_s=a.search_lag,
        block_after_ignored_429=a.block_after_ignored_429 or None, db_path=a.db, seed=a.seed,
    )
    sandbox = PipedriveSandbox(settings, host=a.host, port=a.port)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    base_url = sandbox.start()
    print(f"PIPEDRIVE_BASE_URL={base_url}", flush=True)
    print(f"PIPEDRIVE_API_TOKEN={settings.tokens[0]}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
