"""The ``step-patterns`` command.

``render`` and ``sync`` ship with the Airflow distribution (``step_patterns.commands``).
The commands that run the local cloud or build the Lambda zip (``sandbox``, ``demo``,
``package``) belong to the dev distribution ``step-patterns-sandbox``, which registers them
under the ``step_patterns.commands`` entry-point group; where it is not installed they still
answer, with one line saying what to install.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

# Shipped with this distribution: sub-command name -> module under step_patterns.commands.
COMMANDS = {"render": "render", "sync": "sync"}
# Added by the dev distribution; a stub says how to get them when it is absent.
DEV_COMMANDS = {
    "sandbox": "run the local cloud (moto, Lambdas, warehouse, Pipedrive)",
    "demo": "run the example DAGs on the local cloud and report",
    "package": "build the Lambda bundle zip for deployment (reproducible)",
}
ENTRY_POINT_GROUP = "step_patterns.commands"
DEV_INSTALL_HINT = (
    "is a dev command of step-patterns: from a checkout of step-patterns run `make {command}`, "
    "or install the dev parts with `pip install ./sandbox` there"
)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a refused argument is one line (argparse prints the usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="step-patterns",
        description="Generate, run and inspect the chunked-iterator and wait-loop state machines.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(f"step_patterns.commands.{module_name}").register(subparsers)
    registered = set()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in COMMANDS or entry.name in registered:
            continue
        try:
            register = entry.load()
        except ImportError:  # a dev part whose own dependencies are missing: fall back to the hint
            continue
        register(subparsers)
        registered.add(entry.name)
    for name, help_text in DEV_COMMANDS.items():
        if name not in registered:
            stub = subparsers.add_parser(name, help=f"{help_text} [dev part, not installed]", add_help=False)
            stub.set_defaults(func=_missing_dev_part(name), takes_any_arguments=True)
    return parser


def _missing_dev_part(command: str):
    def run(_args) -> int:
        print(f"step-patterns {command}: {DEV_INSTALL_HINT.format(command=command)}", file=sys.stderr)
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # known args only: a missing dev command answers its one-line hint whatever options follow it
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
