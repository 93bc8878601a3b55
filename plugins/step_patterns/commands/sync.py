"""``step-patterns sync FILE.jsonl``: upsert records to Pipedrive with the Lambda's own client.

Same limiter, client and upsert code as the chunk-syncer Lambda (``step_lambdas.pipedrive``);
only the token (``PIPEDRIVE_API_TOKEN``) and the sync state (a local file) differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from step_lambdas.pipedrive import (
    LocalFileSyncState,
    PipedriveClient,
    SlidingWindowLimiter,
    SyncOptions,
    TokenNotConfigured,
    load_api_token,
    parse_rate,
    sync_records,
)
from step_lambdas.pipedrive.records import UnreadableRecord

EXIT_OK, EXIT_FAILED_RECORDS, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="create/update Pipedrive deals from a JSON Lines file (rate-limited, idempotent)",
        description="Upsert the records of a JSON Lines file to a Pipedrive-compatible API with the "
                    "chunk-syncer Lambda's client and limiter. Token from $PIPEDRIVE_API_TOKEN.",
    )
    parser.add_argument("file", type=Path, metavar="FILE.jsonl", help="one record (JSON object) per line")
    parser.add_argument("--base-url", required=True, help="e.g. https://yourcompany.pipedrive.com or a sandbox URL")
    parser.add_argument("--rate", type=_rate, default=None, metavar="N/Ws",
                        help="at most N requests in any W seconds (e.g. 20/2s); default: start at 20/2s "
                             "and follow the server's x-ratelimit-limit; the server can only lower a given rate")
    parser.add_argument("--concurrency", type=_positive_int, default=8, metavar="K",
                        help="requests in flight (default 8)")
    parser.add_argument("--external-id-field", default="External ID", metavar="KEY",
                        help="custom deal field (key or name) that stores external_id (default 'External ID')")
    parser.add_argument("--state", type=Path, default=None, metavar="PATH",
                        help="sync state file (default .step-patterns/pipedrive-state/<host>.jsonl)")
    parser.add_argument("--failures", type=Path, default=None, metavar="PATH",
                        help="where failed records and reasons go (default FILE.failures.jsonl)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (create/update/unchanged) without writing anything")
    parser.set_defaults(func=run)


def _rate(text: str) -> tuple[int, float]:
    try:
        return parse_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def default_state_path(base_url: str) -> Path:
    netloc = urlsplit(base_url).netloc or "default"
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in netloc)
    return Path(".step-patterns") / "pipedrive-state" / f"{safe}.jsonl"


def read_records(path: Path) -> tuple[list[Any], list[int]]:
    """Records of a JSON Lines file (blank lines skipped) and the line number of each."""
    records: list[Any] = []
    lines: list[int] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                records.append(UnreadableRecord(f"invalid JSON at line {number}: {error.msg} (column {error.colno})"))
            lines.append(number)
    return records, lines


class ProgressBar:
    """One redrawn stderr line with rate and ETA; silent unless stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr  # looked up now: tests swap it
        self.width = width
        self.enabled = self.stream.isatty()
        self.began = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done < total):
            return
        self._last = now
        elapsed = max(now - self.began, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        filled = int(self.width * done / total) if total else self.width
        eta_text = "--:--" if eta == float("inf") else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                          f"{rate:6.1f} rec/s ETA {eta_text} ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    try:
        token = load_api_token()
    except TokenNotConfigured as error:
        print(f"step-patterns sync: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not args.file.is_file():
        print(f"step-patterns sync: {args.file}: no such file", file=sys.stderr)
        return EXIT_USAGE
    records, line_numbers = read_records(args.file)

    limit, window = args.rate if args.rate else (None, 2.0)
    limiter = SlidingWindowLimiter(limit, window)
    client = PipedriveClient(args.base_url, token, limiter, pool_size=max(args.concurrency, 4))
    state = LocalFileSyncState(args.state or default_state_path(args.base_url))
    options = SyncOptions(external_id_field=args.external_id_field, concurrency=args.concurrency,
                          dry_run=args.dry_run)
    progress = ProgressBar()
    try:
        report = sync_records(records, client=client, state=state, options=options, on_progress=progress)
    except ValueError as error:  # setup problems, e.g. the external id field does not exist
        progress.close()
        print(f"step-patterns sync: {error}", file=sys.stderr)
        return EXIT_USAGE
    progress.close()
    if not args.dry_run:
        state.compact()

    summary = report.summary
    failures = [{"line": line_numbers[r.index], "index": r.index, "external_id": r.external_id, "reasons": r.reasons}
                for r in report.failures]
    failures_file = None
    if failures and not args.dry_run:
        failures_file = args.failures or args.file.with_name(args.file.name + ".failures.jsonl")
        failures_file.write_text("".join(json.dumps(f) + "\n" for f in failures), encoding="utf-8")
    out: dict[str, Any] = {
        "records": summary.records, "created": summary.created, "updated": summary.updated,
        "unchanged": summary.unchanged, "failed": summary.failed,
        "failures_file": str(failures_file) if failures_file else None,
        "requests": summary.requests, "responses_429": summary.responses_429, "elapsed_s": summary.elapsed_s,
    }
    if args.dry_run:
        out = {"dry_run": True, "plan": {"create": summary.would_create, "update": summary.would_update,
                                         "unchanged": summary.unchanged, "failed": summary.failed},
               **out, "failures": failures[:50]}
    if summary.stopped:
        out["stopped"] = summary.stopped
        out["not_processed"] = len(records) - summary.cursor
    print(json.dumps(out, indent=2))
    if report.stop_error is not None:
        print(f"step-patterns sync: stopped: {report.stop_error}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_FAILED_RECORDS if summary.failed else EXIT_OK
