"""The ``step-patterns`` command: the one place that composes all sides of the project.

Each sub-command lives in its own module under ``step_patterns.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (taking the parsed
arguments, returning an exit code). Modules are imported lazily by name so that a missing
optional side (the sandbox is not shipped to Airflow) only breaks its own command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> module under step_patterns.commands
COMMANDS = {
    "render": "render",
    "sync": "sync",
    "sandbox": "sandbox",
    "demo": "demo",
    "package": "package",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="step-patterns",
        description="Generate, run and inspect the chunked-iterator and wait-loop state machines.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(f"step_patterns.commands.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"step_patterns.commands.{module_name}":
                raise
            continue  # command not built yet / side not installed
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
