"""`step-patterns sync` end to end against the sandbox."""

from __future__ import annotations

import json
import socket

import pytest

from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings
from step_patterns.cli import main


@pytest.fixture
def sandbox(monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "sandbox-token")
    box = PipedriveSandbox(PipedriveSettings(burst_limit=40, window_s=0.5), host="127.0.0.1", port=0)
    box.start()
    yield box
    box.stop()


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def rows(n, title="Deal"):
    return [{"external_id": f"C-{i}", "title": f"{title} {i}", "custom_fields": {"Lead source": "cli"}} for i in range(n)]


def run_cli(capsys, *argv):
    code = main(["sync", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def refusal(capsys, *argv) -> tuple[int, str]:
    """Run a sync that must be refused: exit code and its one stderr line (nothing on stdout)."""
    try:
        code = main(["sync", *map(str, argv)])
    except SystemExit as exit_:  # argparse refusing an argument
        code = exit_.code
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("step-patterns sync: "), err
    return code, lines[0]


def closed_port_url() -> str:
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_sync_then_resync_then_failures_file(sandbox, tmp_path, capsys):
    data = write_jsonl(tmp_path / "deals.jsonl", rows(20))
    state = tmp_path / "state.jsonl"
    common = ("--base-url", sandbox.base_url, "--rate", "40/0.5s", "--state", state)
    code, summary, err = run_cli(capsys, data, *common)
    assert code == 0, err
    assert {k: summary[k] for k in ("records", "created", "updated", "unchanged", "failed")} == \
        {"records": 20, "created": 20, "updated": 0, "unchanged": 0, "failed": 0}
    assert summary["requests"] == 22 and summary["responses_429"] == 0 and summary["failures_file"] is None
    assert "\r[" not in err  # no progress bar when stderr is not a terminal

    changed = rows(20)
    changed[4]["title"] = "renamed"
    write_jsonl(data, [*changed, {"external_id": "C-X"}, "{not json"])
    code, summary, _ = run_cli(capsys, data, *common)
    assert code == 1  # some records failed
    assert (summary["updated"], summary["unchanged"], summary["failed"]) == (1, 19, 2)
    failures = [json.loads(line) for line in open(summary["failures_file"])]
    assert [(f["line"], f["external_id"]) for f in failures] == [(21, "C-X"), (22, None)]
    assert "title: expected non-empty string, got missing" in failures[0]["reasons"]
    assert "invalid JSON at line 22" in failures[1]["reasons"][0]
    assert sandbox.stats()["deals"] == 20


def test_dry_run_writes_nothing(sandbox, tmp_path, capsys):
    data = write_jsonl(tmp_path / "deals.jsonl", [*rows(5), {"external_id": "bad"}])
    state = tmp_path / "state.jsonl"
    code, summary, _ = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", state, "--dry-run")
    assert summary["dry_run"] is True
    assert summary["plan"] == {"create": 5, "update": 0, "unchanged": 0, "failed": 1}
    assert summary["failures_file"] is None and summary["failures"][0]["external_id"] == "bad"
    assert code == 1
    assert not state.exists() and not (tmp_path / "deals.jsonl.failures.jsonl").exists()
    stats = sandbox.stats()
    assert stats["deals"] == 0 and set(stats["requests_by_method"]) == {"GET"}


@pytest.mark.parametrize("rate", ["20", "fast", "0/2s", "20/0s"])
def test_bad_rate_is_one_line(tmp_path, capsys, rate):
    code, line = refusal(capsys, tmp_path / "x.jsonl", "--base-url", "http://127.0.0.1:9", "--rate", rate)
    assert code == 2 and f"argument --rate: rate {rate!r}" in line


def test_a_base_url_that_is_not_http_is_one_line(tmp_path, capsys):
    code, line = refusal(capsys, tmp_path / "x.jsonl", "--base-url", "yourcompany.pipedrive.com")
    assert code == 2 and "--base-url" in line and "'yourcompany.pipedrive.com'" in line


BAD_FILES = {
    # name: (bytes or None for a directory/missing file, what the line must say)
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file (a NUL byte at line 3, column 1, byte offset 8)"),
    "latin-1": ('{"external_id": "C-1", "title": "ok"}\n{"external_id": "C-2", "title": "Café"}\n'.encode("latin-1"),
                "is not UTF-8 (byte 0xe9 at line 2, column 37, byte offset 74)"),
    "gzip": (b"\x1f\x8b\x08\x00", "is gzip-compressed; decompress it first"),
    "utf-16": ('{"external_id": "C-1"}\n'.encode("utf-16"), "is UTF-16 text; JSON Lines must be UTF-8"),
    "directory": (None, "is a directory, not a JSON Lines file"),
    "missing": (None, "no such file"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_file_that_is_not_utf8_json_lines_is_one_line_naming_it(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "sandbox-token")
    content, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind}.jsonl"
    if kind == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    code, line = refusal(capsys, path, "--base-url", closed_port_url())
    assert code == 2
    assert line.startswith(f"step-patterns sync: {path}: {expected}"), line


def test_a_byte_order_mark_is_not_a_problem(sandbox, tmp_path, capsys):
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows(1)[0]).encode() + b"\n")
    code, summary, err = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s", "--dry-run")
    assert code == 0, err
    assert summary["plan"]["create"] == 1


def test_an_unreachable_server_is_one_line_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "sandbox-token")
    url = closed_port_url()
    code, line = refusal(capsys, write_jsonl(tmp_path / "deals.jsonl", rows(1)), "--base-url", url,
                         "--state", tmp_path / "s")
    assert code == 1
    assert f"cannot use the Pipedrive API at {url}" in line and "ConnectionError" in line and "check --base-url" in line
    assert not (tmp_path / "s").exists()


def test_a_wrong_token_is_one_line_saying_what_to_fix(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "not-the-token-4711")
    code, line = refusal(capsys, write_jsonl(tmp_path / "deals.jsonl", rows(3)), "--base-url", sandbox.base_url,
                         "--state", tmp_path / "s")
    assert code == 2
    assert "HTTP 401 unauthorized: the API token was refused" in line and "PIPEDRIVE_API_TOKEN" in line
    assert "4711" not in line
    assert sandbox.stats()["deals"] == 0


def test_a_state_path_that_is_a_directory_or_not_a_state_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "sandbox-token")
    data = write_jsonl(tmp_path / "deals.jsonl", rows(1))
    code, line = refusal(capsys, data, "--base-url", closed_port_url(), "--state", tmp_path)
    assert code == 2 and f"--state {tmp_path}: is a directory" in line
    code, line = refusal(capsys, data, "--base-url", closed_port_url(), "--state", data)
    assert code == 2 and f"--state {data}: not a readable step-patterns sync state" in line


def test_missing_token_or_unknown_id_field_are_clear(sandbox, tmp_path, capsys, monkeypatch):
    data = write_jsonl(tmp_path / "deals.jsonl", rows(1))
    code, _, err = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s",
                           "--external-id-field", "Customer key")
    assert code == 2 and "'Customer key' is not a custom deal field" in err
    monkeypatch.delenv("PIPEDRIVE_API_TOKEN")
    code, line = refusal(capsys, data, "--base-url", sandbox.base_url)
    assert code == 2 and "PIPEDRIVE_API_TOKEN" in line


def test_daily_budget_stops_with_exit_3_and_reports_what_was_left(sandbox, tmp_path, capsys):
    sandbox.configure(daily_budget=60)  # dealFields 1? + list 10 + a few creates at 5 each
    data = write_jsonl(tmp_path / "deals.jsonl", rows(30))
    code, summary, err = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s.jsonl")
    assert code == 3 and "daily request budget" in err
    assert summary["stopped"].startswith("DailyBudgetExceeded")
    assert summary["created"] + summary["not_processed"] == 30
    # every deal created (even one in flight past the cursor) is in the state: the rerun
    # after the daily reset finishes the file without a duplicate
    sandbox.configure(daily_budget=None)
    code, summary, _ = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s.jsonl")
    assert code == 0 and summary["created"] + summary["unchanged"] == 30
    stats = sandbox.stats()
    assert stats["deals"] == 30 and stats["duplicate_external_ids"] == 0


def test_progress_bar_shows_rate_and_eta_only_on_a_terminal():
    import io

    from step_patterns.commands.sync import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar(stream)
        bar(5, 10)
        bar(10, 10)
        bar.close()
    assert "10/10" in tty.getvalue() and "rec/s" in tty.getvalue() and "ETA" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_a_failures_file_that_cannot_be_written_is_one_line_after_the_report(sandbox, tmp_path, capsys):
    data = write_jsonl(tmp_path / "deals.jsonl", [*rows(2), {"external_id": "no-title"}])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    code, summary, err = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s",
                                 "--failures", blocker / "failures.jsonl")
    assert code == 1 and summary["created"] == 2 and summary["failed"] == 1 and summary["failures_file"] is None
    assert err.count("\n") == 1 and err.endswith("; the failures are not saved\n")
    assert err.startswith(f"step-patterns sync: cannot write --failures {blocker / 'failures.jsonl'}: ")
