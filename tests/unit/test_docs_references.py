"""The docs cite tests as evidence; a cited test that was renamed or deleted makes the doc lie."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")}


def _citations() -> list[tuple[str, str, str]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += [(doc.name, file, name) for file, name in CITATION.findall(doc.read_text())]
    return found


def test_every_cited_test_exists():
    citations = _citations()
    assert citations, "no doc cites a test: the pattern no longer matches the docs"
    missing = [f"{doc}: {file}::{name}" for doc, file, name in citations
               if not (ROOT / file).is_file() or name not in _test_names(ROOT / file)]
    assert not missing, "docs cite tests that do not exist:\n" + "\n".join(missing)


def test_every_reliability_drill_is_in_the_table():
    cited = {(file, name) for doc, file, name in _citations() if doc == "reliability.md"}
    drills = {(str(path.relative_to(ROOT)), name)
              for path in sorted((ROOT / "tests" / "reliability").glob("test_*.py")) for name in _test_names(path)}
    undocumented = sorted(f"{file}::{name}" for file, name in drills - cited)
    assert not undocumented, "drills missing from docs/reliability.md:\n" + "\n".join(undocumented)
