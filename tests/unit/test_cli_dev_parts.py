"""`step-patterns` where the dev distribution (step-patterns-sandbox) is missing or broken.

The production install has only `render` and `sync`; `sandbox`, `demo` and `package` still
answer, with one line saying what to install, and exit 2.
"""

from __future__ import annotations

import pytest

from step_patterns import cli


class BrokenEntryPoint:
    """A dev part that is installed but cannot load (its own dependencies missing)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def load(self):
        raise ModuleNotFoundError("No module named 'moto'")


@pytest.fixture(params=["absent", "broken"])
def without_dev_parts(request, monkeypatch):
    found = [] if request.param == "absent" else [BrokenEntryPoint(name) for name in cli.DEV_COMMANDS]
    monkeypatch.setattr(cli, "entry_points", lambda group: found if group == cli.ENTRY_POINT_GROUP else [])


@pytest.mark.parametrize("argv", [["sandbox", "up"], ["demo", "--with-wait-loop"], ["package"], ["package", "--help"]])
def test_a_dev_command_without_the_dev_parts_is_one_line_saying_what_to_install(without_dev_parts, capsys, argv):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"step-patterns {argv[0]}: is a dev command of step-patterns")
    assert "pip install ./sandbox" in err and f"make {argv[0]}" in err


def test_help_lists_the_dev_commands_as_not_installed_and_the_shipped_ones_work(without_dev_parts, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, help_text in cli.DEV_COMMANDS.items():
        assert f"{name} {help_text} [dev part, not installed]" in text
    assert text.count("[dev part, not installed]") == len(cli.DEV_COMMANDS)
    assert cli.main(["render", "wait-loop", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2")


def test_a_bad_argument_is_one_line_not_the_usage_block(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", "wait-loop", "--max-polls", "many"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == ("step-patterns render wait-loop: argument --max-polls: invalid int value: 'many' "
                   "(see step-patterns render wait-loop --help)\n")


def test_render_to_a_path_it_cannot_write_is_one_line(capsys, tmp_path):
    assert cli.main(["render", "wait-loop", "--output", str(tmp_path / "missing-dir" / "x.json")]) == 2
    assert cli.main(["render", "docs", "--output", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"step-patterns render: cannot write --output {tmp_path / 'missing-dir' / 'x.json'}: No such file or directory",
                     f"step-patterns render: cannot write --output {tmp_path}: Is a directory"]
