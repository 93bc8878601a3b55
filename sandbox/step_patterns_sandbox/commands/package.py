"""``step-patterns package``: build the deployable Lambda zip and report its size and digest.

    step-patterns package [--output build/step-patterns-lambdas.zip] [--lock uv.lock]

The zip holds ``step_lambdas/`` and the runtime dependencies the Lambda runtime lacks
(``requests`` and its closure, pure-Python wheels pinned by hash in ``uv.lock``); the same
checkout gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from step_patterns_sandbox.bundle import DEFAULT_PACKAGE_PATH, PackagingError, build_package


def register(subparsers) -> None:
    parser = subparsers.add_parser("package", help="build the Lambda bundle zip for deployment (reproducible)")
    parser.add_argument("--output", type=Path, default=DEFAULT_PACKAGE_PATH, help="where to write the zip")
    parser.add_argument("--lock", type=Path, default=None, help="uv.lock to take the vendored versions from "
                        "(default: the checkout's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        info = build_package(args.output, args.lock)
    except PackagingError as error:
        print(f"step-patterns package: {error}", file=sys.stderr)
        return 1
    vendored = ", ".join(f"{wheel.name} {wheel.version}" for wheel in info.vendored)
    print(f"wrote {info.path} ({info.size:,} bytes, {info.size / 1024 / 1024:.2f} MiB)")
    print(f"sha256 {info.sha256_hex}")
    print(f"CodeSha256 {info.code_sha256}")
    print(f"vendored: {vendored}")
    return 0
