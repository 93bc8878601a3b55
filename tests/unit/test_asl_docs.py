"""docs/state-machines.md is the generator's output, byte for byte."""

from __future__ import annotations

from pathlib import Path

from step_patterns.commands.render import docs_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machines.md"


def test_state_machines_doc_is_up_to_date():
    assert DOC.exists(), "run: uv run step-patterns render docs --output docs/state-machines.md"
    assert DOC.read_text(encoding="utf-8") == docs_markdown(), (
        "docs/state-machines.md is stale: uv run step-patterns render docs --output docs/state-machines.md"
    )


def test_doc_has_a_mermaid_diagram_and_the_json_of_each_machine():
    text = docs_markdown()
    assert text.count("```mermaid\nstateDiagram-v2\n") == 3
    assert text.count("```json\n{") == 3
