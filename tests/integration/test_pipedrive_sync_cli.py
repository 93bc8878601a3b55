"""`step-patterns sync` end to end against the sandbox."""

from __future__ import annotations

import json

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
def test_bad_rate_is_a_clear_usage_error(tmp_path, capsys, rate):
    with pytest.raises(SystemExit) as exit_:
        main(["sync", str(tmp_path / "x.jsonl"), "--base-url", "http://127.0.0.1:9", "--rate", rate])
    assert exit_.value.code == 2
    assert "--rate" in capsys.readouterr().err


def test_missing_token_or_unknown_id_field_are_clear(sandbox, tmp_path, capsys, monkeypatch):
    data = write_jsonl(tmp_path / "deals.jsonl", rows(1))
    code, _, err = run_cli(capsys, data, "--base-url", sandbox.base_url, "--state", tmp_path / "s",
                           "--external-id-field", "Customer key")
    assert code == 2 and "'Customer key' is not a custom deal field" in err
    monkeypatch.delenv("PIPEDRIVE_API_TOKEN")
    code, _, err = run_cli(capsys, data, "--base-url", sandbox.base_url)
    assert code == 2 and "PIPEDRIVE_API_TOKEN" in err


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
