"""``step-patterns sandbox up``: the local cloud (same as ``python -m step_patterns_sandbox up``)."""

from __future__ import annotations


def register(subparsers) -> None:
    from step_patterns_sandbox.__main__ import add_arguments, run

    parser = subparsers.add_parser("sandbox", help="run the local cloud (moto, Lambdas, warehouse, Pipedrive)")
    add_arguments(parser)
    parser.set_defaults(func=run)
