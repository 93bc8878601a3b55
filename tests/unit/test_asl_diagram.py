"""Mermaid/DOT text and the ``step-patterns render`` command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from step_patterns.asl import ChunkedIteratorSettings, WaitLoopSettings, build_chunked_iterator, build_wait_loop
from step_patterns.asl.diagram import to_dot, to_mermaid
from step_patterns.cli import main

ARN = "arn:aws:lambda:us-east-1:123456789012:function:step-patterns-{}"


def _wait_loop():
    return build_wait_loop(WaitLoopSettings(statement_starter_arn=ARN.format("a"), statement_status_arn=ARN.format("b")))


def _chunked():
    return build_chunked_iterator(ChunkedIteratorSettings(ARN.format("q"), ARN.format("c"), ARN.format("r")))


def test_mermaid_draws_every_state_and_edge_with_conditions():
    text = to_mermaid(_wait_loop())
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> StartStatement" in lines
    assert "    CheckStatementStatus --> StatementFailed : statement.status == FAILED" in lines
    assert "    CheckStatementStatus --> UnknownStatementStatus : otherwise" in lines
    assert "    CheckPollBudget --> PollBudgetExhausted : poll.polls >= 600" in lines
    assert "    GetStatementStatus --> GetStatementStatusFailed : catch States.ALL" in lines
    assert "    StatementFinished --> [*]" in lines
    assert "    WaitForStatement : Wait $.poll.wait_seconds s" in lines
    assert "    StatementFailed : Fail Redshift.StatementFailed" in lines
    # a Choice is never an end, and every state is drawn
    assert "    CheckStatementStatus --> [*]" not in lines
    for name in _wait_loop().to_dict()["States"]:
        assert f"    {name} : " in text


def test_mermaid_nests_the_map_processor():
    lines = to_mermaid(_chunked()).splitlines()
    start = lines.index("    state SyncChunks {")
    end = lines.index("    }", start)
    body = lines[start + 1 : end]
    assert "        [*] --> SyncChunk" in body
    assert "        CheckChunkDone --> ContinueChunk : sync.done == false and sync.cursor > cursor" in body
    assert "        ContinueChunk --> SyncChunk" in body
    assert "    SyncChunks --> ReportFailedSync : catch States.ALL" in lines
    assert "    ReportFailedSync --> ChunkSyncFailed : catch States.ALL" in lines
    assert any(line.startswith("    class ") and "QueryFailed" in line and line.endswith("failState") for line in lines)


def test_dot_is_a_digraph_with_a_cluster_for_the_map():
    text = to_dot(_chunked(), "chunked")
    assert text.startswith('digraph "chunked" {') and text.rstrip().endswith("}")
    assert 'subgraph "cluster_SyncChunks" {' in text
    assert '"SyncChunks.__start__" -> "SyncChunk";' in text
    assert '"RunQuery" -> "QueryFailed" [label="catch States.ALL", style=dashed' in text
    assert '"CheckChunkDone" [label="CheckChunkDone\\nChoice", shape=diamond' in text
    assert text.count("{") == text.count("}")


def test_render_json_defaults_use_placeholder_arns(capsys):
    assert main(["render", "wait-loop"]) == 0
    definition = json.loads(capsys.readouterr().out)
    assert definition["States"]["StartStatement"]["Parameters"]["FunctionName"] == ARN.format("statement-start")
    assert definition["TimeoutSeconds"] == WaitLoopSettings.__dataclass_fields__["timeout_seconds"].default


def test_render_options_reach_the_builder(capsys, tmp_path):
    out = tmp_path / "machine.json"
    assert main(["render", "wait-loop", "--variant", "sdk", "--sdk-target", "workgroup", "--sdk-auth", "iam",
                 "--min-seconds", "1", "--max-seconds", "8", "--max-polls", "50", "--output", str(out)]) == 0
    states = json.loads(out.read_text())["States"]
    assert states["InitPoll"]["Parameters"]["poll"]["schedule"] == [1, 2, 4, 8]
    assert states["StartStatement"]["Parameters"]["WorkgroupName.$"] == "$.workgroup_name"
    assert main(["render", "chunked-iterator", "--map-mode", "INLINE", "--max-concurrency", "3"]) == 0
    sync = json.loads(capsys.readouterr().out)["States"]["SyncChunks"]
    assert sync["ItemsPath"] == "$.export.items" and sync["MaxConcurrency"] == 3
    assert main(["render", "chunked-iterator", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out == to_mermaid(
        build_chunked_iterator(ChunkedIteratorSettings(ARN.format("query-executor"), ARN.format("chunk-syncer"), ARN.format("report")))
    )


def test_render_refuses_bad_settings_with_the_reason(capsys):
    assert main(["render", "wait-loop", "--factor", "0.5"]) == 2
    assert "invalid wait-loop settings: factor must be a finite number >= 1.0" in capsys.readouterr().err
    assert main(["render", "wait-loop", "--max-polls", "100000"]) == 2
    assert "25,000-event cap" in capsys.readouterr().err


def test_png_without_graphviz_says_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' here
    assert main(["render", "wait-loop", "--format", "png", "--output", str(tmp_path / "x.png")]) != 0
    assert "install Graphviz" in capsys.readouterr().err.replace("Install", "install")
    assert not (tmp_path / "x.png").exists()


def test_png_pipes_dot_text_through_graphviz(tmp_path, monkeypatch):
    # A stand-in 'dot' that records its stdin and writes the -o file, as Graphviz does.
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\ncat > "$(dirname "$0")/stdin.dot"\nprintf PNG > "$3"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "wait.png"
    assert main(["render", "wait-loop", "--format", "png", "--output", str(target)]) == 0
    assert target.read_bytes() == b"PNG"
    assert Path(tmp_path / "stdin.dot").read_text().startswith('digraph "wait_loop" {')
