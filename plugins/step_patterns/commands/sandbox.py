"""``step-patterns sandbox up``: the local cloud (same as ``python -m sandbox up``)."""

from __future__ import annotations


def register(subparsers) -> None:
    from sandbox.__main__ import add_arguments, run  # the sandbox is a dev-only side

    parser = subparsers.add_parser("sandbox", help="run the local cloud (moto, Lambdas, warehouse, Pipedrive)")
    add_arguments(parser)
    parser.set_defaults(func=run)
