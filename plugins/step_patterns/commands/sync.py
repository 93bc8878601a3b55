"""``step-patterns sync FILE.jsonl``: upsert records to Pipedrive with the Lambda's own client.

Same limiter, client and upsert code as the chunk-syncer Lambda (``step_lambdas.pipedrive``);
only the token (``PIPEDRIVE_API_TOKEN``) and the sync state (a local file) differ.

Exit codes: 0 done; 1 the run failed (records failed, or the server could not be reached);
2 bad input (file, arguments, token); 3 stopped by Pipedrive (daily budget, block). Every
refusal is one line on stderr naming the problem and the file or URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from step_lambdas.pipedrive import (
    AuthenticationFailed,
    LocalFileSyncState,
    PipedriveClient,
    PipedriveError,
    SlidingWindowLimiter,
    StopRun,
    SyncOptions,
    TokenNotConfigured,
    load_api_token,
    parse_rate,
    sync_records,
)
from step_lambdas.pipedrive.records import UnreadableRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # what "Unicode" text exports on Windows start with


class UnreadableFile(ValueError):
    """The records file cannot be read as UTF-8 JSON Lines; the message says where and why."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="create/update Pipedrive deals from a JSON Lines file (rate-limited, idempotent)",
        description="Upsert the records of a JSON Lines file to a Pipedrive-compatible API with the "
                    "chunk-syncer Lambda's client and limiter. Token from $PIPEDRIVE_API_TOKEN.",
    )
    parser.add_argument("file", type=Path, metavar="FILE.jsonl", help="one record (JSON object) per line")
    parser.add_argument("--base-url", required=True, type=_base_url,
                        help="e.g. https://yourcompany.pipedrive.com or a sandbox URL")
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


def _base_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as https://yourcompany.pipedrive.com, got {text!r}")
    return text


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
    """Records of a JSON Lines file (blank lines skipped) and the line number of each.

    :class:`UnreadableFile` when the file is missing, a directory, binary or not UTF-8; a line
    that is not JSON becomes an :class:`UnreadableRecord` (reported as that record's failure).
    """
    if path.is_dir():
        raise UnreadableFile(f"{path}: is a directory, not a JSON Lines file (one JSON object per line)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such file") from None
    except OSError as error:
        raise UnreadableFile(f"{path}: cannot read it ({error.strerror})") from None
    records: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(_utf8_text(path, data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            records.append(UnreadableRecord(f"invalid JSON at line {number}: {error.msg} (column {error.colno})"))
        lines.append(number)
    return records, lines


def _utf8_text(path: Path, data: bytes) -> str:
    """``data`` as text (a UTF-8 byte order mark allowed), or UnreadableFile naming the first bad byte."""
    if data.startswith(GZIP_MAGIC):
        raise UnreadableFile(f"{path}: is gzip-compressed; decompress it first (gunzip -k {path})")
    if data.startswith(UTF16_BOMS):
        raise UnreadableFile(f"{path}: is UTF-16 text; JSON Lines must be UTF-8: convert it, e.g. iconv -f utf-16 -t utf-8 {path}")
    nul = data.find(b"\0")
    if nul >= 0:
        raise UnreadableFile(f"{path}: is a binary file (a NUL byte at {_where(data, nul)}), not JSON Lines text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        raise UnreadableFile(
            f"{path}: is not UTF-8 (byte 0x{data[offset]:02x} at {_where(data, offset)}); JSON Lines must be "
            f"UTF-8: convert it, e.g. iconv -f latin1 -t utf-8 {path}"
        ) from None


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}, byte offset {offset}"


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
        records, line_numbers = read_records(args.file)
        token = load_api_token()
    except (UnreadableFile, TokenNotConfigured) as error:
        return _refuse(str(error), EXIT_USAGE)
    state_path = args.state or default_state_path(args.base_url)
    failures_path = args.failures or args.file.with_name(args.file.name + ".failures.jsonl")
    state = LocalFileSyncState(state_path)
    problem = _unusable_output(state, failures_path)
    if problem:
        return _refuse(problem, EXIT_USAGE)

    limit, window = args.rate if args.rate else (None, 2.0)
    limiter = SlidingWindowLimiter(limit, window)
    client = PipedriveClient(args.base_url, token, limiter, pool_size=max(args.concurrency, 4))
    refused = _check_server(client, token)
    if refused:
        return refused
    options = SyncOptions(external_id_field=args.external_id_field, concurrency=args.concurrency,
                          dry_run=args.dry_run)
    progress = ProgressBar()
    try:
        report = sync_records(records, client=client, state=state, options=options, on_progress=progress)
    except ValueError as error:  # setup problems, e.g. the external id field does not exist
        progress.close()
        return _refuse(str(error), EXIT_USAGE)
    except PipedriveError as error:  # the server failed past the client's retries before any record ran
        progress.close()
        return _refuse(f"{args.base_url}: {error}", EXIT_FAILED)
    progress.close()
    if not args.dry_run:
        state.compact()

    summary = report.summary
    failures = [{"line": line_numbers[r.index], "index": r.index, "external_id": r.external_id, "reasons": r.reasons}
                for r in report.failures]
    failures_file = None
    unwritten = None
    if failures and not args.dry_run:
        try:
            failures_path.parent.mkdir(parents=True, exist_ok=True)
            failures_path.write_text("".join(json.dumps(f) + "\n" for f in failures), encoding="utf-8")
            failures_file = failures_path
        except OSError as error:  # the run is done and in the sync state: report it, then say what was not written
            unwritten = f"cannot write --failures {failures_path}: {error.strerror}; the failures are not saved"
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
        return _refuse(f"stopped: {report.stop_error}", EXIT_STOPPED)
    if unwritten:
        return _refuse(unwritten, EXIT_FAILED)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _refuse(message: str, code: int) -> int:
    print(f"step-patterns sync: {message}", file=sys.stderr)
    return code


def _unusable_output(state: LocalFileSyncState, failures_path: Path) -> str | None:
    """Why the sync state or the failures file cannot be used, before anything is sent."""
    for what, path in (("--state", state.path), ("--failures", failures_path)):
        if path.is_dir():
            return f"{what} {path}: is a directory, give a file path"
    try:
        state.load()
    except (OSError, ValueError, LookupError, TypeError, AttributeError) as error:
        return f"--state {state.path}: not a readable step-patterns sync state ({type(error).__name__}: {error})"
    return None


def _check_server(client: PipedriveClient, token: str) -> int | None:
    """One cheap request, not retried, before the run: a wrong URL or token is one line at once
    (the run's own requests keep the client's full retry budget, as in the Lambda)."""
    probe = PipedriveClient(client.base_url, token, client.limiter, session=client.session,
                            max_retries=0)
    try:
        probe.request("GET", "/api/v1/dealFields", params={"start": 0, "limit": 1})
    except AuthenticationFailed as error:
        return _refuse(f"{client.base_url}: {error}", EXIT_USAGE)
    except StopRun as error:
        return _refuse(f"{client.base_url}: {error}", EXIT_STOPPED)
    except PipedriveError as error:
        return _refuse(f"cannot use the Pipedrive API at {client.base_url} ({error}): check --base-url and that "
                       "the server is up and reachable from here", EXIT_FAILED)
    return None
