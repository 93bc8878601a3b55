"""``step-patterns render``: print a generated state machine as ASL JSON or draw it.

    step-patterns render wait-loop [--variant lambda|sdk] [backoff options] [--format json|mermaid|dot|png]
    step-patterns render chunked-iterator [--map-mode DISTRIBUTED|INLINE] [...]
    step-patterns render docs [--output docs/state-machines.md]

Lambda ARNs default to placeholders in account 123456789012 so the output is a complete,
lintable definition; pass the real ones to deploy.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

from step_lambdas.contract import checks
from step_patterns.asl import (
    ChunkedIteratorSettings,
    RetryPolicy,
    StateMachine,
    WaitLoopSettings,
    build_chunked_iterator,
    build_wait_loop,
)
from step_patterns.asl.diagram import to_dot, to_mermaid

PLACEHOLDER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:step-patterns-{}"
FORMATS = ("json", "mermaid", "dot", "png")


def _default(settings_class, name: str):
    """The settings dataclass's own default, so the CLI never restates it."""
    for item in dataclasses.fields(settings_class):
        if item.name == name:
            return item.default_factory() if item.default is dataclasses.MISSING else item.default
    raise KeyError(name)


def register(subparsers) -> None:
    parser = subparsers.add_parser("render", help="print a state machine as ASL JSON, Mermaid, DOT or PNG")
    machines = parser.add_subparsers(dest="machine", required=True, metavar="MACHINE")

    wait = machines.add_parser("wait-loop", help="the wait-state loop (Redshift statement + polling)")
    wait.add_argument("--variant", choices=("lambda", "sdk"), default=_default(WaitLoopSettings, "variant"))
    wait.add_argument("--statement-starter-arn", default=PLACEHOLDER_ARN.format("statement-start"))
    wait.add_argument("--statement-status-arn", default=PLACEHOLDER_ARN.format("statement-status"))
    wait.add_argument("--sdk-target", choices=("cluster", "workgroup"), default=_default(WaitLoopSettings, "sdk_target"))
    wait.add_argument("--sdk-auth", choices=("secret_arn", "db_user", "iam"), default=_default(WaitLoopSettings, "sdk_auth"))
    wait.add_argument("--sdk-with-parameters", action="store_true", help="pass the input's Parameters (never empty)")
    wait.add_argument("--sdk-with-statement-name", action="store_true", help="pass the input's StatementName")
    for name, kind, help_text in (
        ("min_seconds", int, "first wait between polls"),
        ("max_seconds", int, "longest wait between polls"),
        ("factor", float, "growth of the wait per poll"),
        ("max_polls", int, "poll budget"),
        ("timeout_seconds", int, "machine TimeoutSeconds"),
    ):
        default = _default(WaitLoopSettings, name)
        wait.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=f"{help_text} (default {default})")
    _add_retry_and_output(wait)
    wait.set_defaults(func=_render_wait_loop)

    chunked = machines.add_parser("chunked-iterator", help="the chunked iterator (query -> S3 chunks -> Map -> report)")
    chunked.add_argument("--query-executor-arn", default=PLACEHOLDER_ARN.format("query-executor"))
    chunked.add_argument("--chunk-syncer-arn", default=PLACEHOLDER_ARN.format("chunk-syncer"))
    chunked.add_argument("--report-arn", default=PLACEHOLDER_ARN.format("report"))
    chunked.add_argument("--map-mode", choices=checks.MAP_MODES, default=_default(ChunkedIteratorSettings, "map_mode"))
    for name, kind, help_text in (
        ("max_concurrency", int, "chunks synced at once"),
        ("tolerated_failure_percentage", float, "share of chunks allowed to fail (DISTRIBUTED)"),
        ("chunk_rerun_attempts", int, "reruns of a chunk whose Lambda timed out or died"),
        ("timeout_seconds", int, "machine TimeoutSeconds"),
    ):
        default = _default(ChunkedIteratorSettings, name)
        chunked.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=f"{help_text} (default {default})")
    _add_retry_and_output(chunked)
    chunked.set_defaults(func=_render_chunked_iterator)

    docs = machines.add_parser("docs", help="write docs/state-machines.md (diagrams + JSON of the defaults)")
    docs.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout)")
    docs.set_defaults(func=_render_docs)


def _add_retry_and_output(parser: argparse.ArgumentParser) -> None:
    defaults = RetryPolicy()
    parser.add_argument("--retry-max-attempts", type=int, default=defaults.max_attempts, help="Task retries of transient errors")
    parser.add_argument("--retry-interval-seconds", type=int, default=defaults.interval_seconds)
    parser.add_argument("--retry-backoff-rate", type=float, default=defaults.backoff_rate)
    parser.add_argument("--retry-max-delay-seconds", type=int, default=defaults.max_delay_seconds)
    parser.add_argument("--format", "-f", choices=FORMATS, default="json")
    parser.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout; required for png)")


def _retry(args) -> RetryPolicy:
    return RetryPolicy(
        interval_seconds=args.retry_interval_seconds,
        max_attempts=args.retry_max_attempts,
        backoff_rate=args.retry_backoff_rate,
        max_delay_seconds=args.retry_max_delay_seconds,
    )


def _render_wait_loop(args) -> int:
    try:
        machine = build_wait_loop(
            WaitLoopSettings(
                variant=args.variant,
                statement_starter_arn=args.statement_starter_arn,
                statement_status_arn=args.statement_status_arn,
                sdk_target=args.sdk_target,
                sdk_auth=args.sdk_auth,
                sdk_with_parameters=args.sdk_with_parameters,
                sdk_with_statement_name=args.sdk_with_statement_name,
                min_seconds=args.min_seconds,
                max_seconds=args.max_seconds,
                factor=args.factor,
                max_polls=args.max_polls,
                timeout_seconds=args.timeout_seconds,
                retry=_retry(args),
            )
        )
    except ValueError as error:
        return _fail(f"invalid wait-loop settings: {error}")
    return _emit(machine, "wait_loop", args.format, args.output)


def _render_chunked_iterator(args) -> int:
    try:
        machine = build_chunked_iterator(
            ChunkedIteratorSettings(
                query_executor_arn=args.query_executor_arn,
                chunk_syncer_arn=args.chunk_syncer_arn,
                report_arn=args.report_arn,
                map_mode=args.map_mode,
                max_concurrency=args.max_concurrency,
                tolerated_failure_percentage=args.tolerated_failure_percentage,
                chunk_rerun_attempts=args.chunk_rerun_attempts,
                timeout_seconds=args.timeout_seconds,
                retry=_retry(args),
            )
        )
    except ValueError as error:
        return _fail(f"invalid chunked-iterator settings: {error}")
    return _emit(machine, "chunked_iterator", args.format, args.output)


def _fail(message: str) -> int:
    print(f"step-patterns render: {message}", file=sys.stderr)
    return 2


def _emit(machine: StateMachine, name: str, output_format: str, output: Path | None) -> int:
    if output_format == "png":
        return _emit_png(to_dot(machine, name), output)
    text = {"json": lambda: machine.to_json() + "\n", "mermaid": lambda: to_mermaid(machine), "dot": lambda: to_dot(machine, name)}[
        output_format
    ]()
    return _write(text, output)


def _write(text: str, output: Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        return _fail(f"cannot write --output {output}: {error.strerror}")
    return 0


def _emit_png(dot_text: str, output: Path | None) -> int:
    if output is None:
        return _fail("--format png writes a binary file: give --output PATH")
    dot = shutil.which("dot")
    if dot is None:
        return _fail(
            "--format png needs Graphviz's 'dot' program, which is not on PATH. Install Graphviz "
            "(apt-get install graphviz, brew install graphviz) or use --format dot/mermaid."
        )
    result = subprocess.run([dot, "-Tpng", "-o", str(output)], input=dot_text.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        return _fail(f"Graphviz 'dot' failed ({result.returncode}): {result.stderr.decode(errors='replace').strip()}")
    return 0


# ---------------------------------------------------------------- docs/state-machines.md

_DOC_HEADER = """# State machines

Generated by `step-patterns render docs --output docs/state-machines.md` from the builders in
`plugins/step_patterns/asl/` with their default settings (placeholder Lambda ARNs in account
123456789012). Do not edit by hand: `tests/unit/test_asl_docs.py` fails when this file and
the generator disagree.
"""


def _doc_machines() -> list[tuple[str, str, StateMachine]]:
    starter, status = PLACEHOLDER_ARN.format("statement-start"), PLACEHOLDER_ARN.format("statement-status")
    return [
        (
            "Wait-state loop, Lambda variant",
            "`step-patterns render wait-loop`: the statement-starter and statement-status Lambdas, "
            "exponential backoff between polls, a poll budget, and a named Fail state for every way it can end badly.",
            build_wait_loop(WaitLoopSettings(statement_starter_arn=starter, statement_status_arn=status)),
        ),
        (
            "Wait-state loop, SDK variant",
            "`step-patterns render wait-loop --variant sdk`: no Lambdas; Step Functions calls the Redshift Data API "
            "itself and maps DescribeStatement onto the same summary, then runs the same loop.",
            build_wait_loop(WaitLoopSettings(variant="sdk")),
        ),
        (
            "Chunked iterator",
            "`step-patterns render chunked-iterator`: query into S3 chunks, a DISTRIBUTED Map over the manifest "
            "(one chunk at a time by default), each chunk synced until done, then the report.",
            build_chunked_iterator(
                ChunkedIteratorSettings(
                    query_executor_arn=PLACEHOLDER_ARN.format("query-executor"),
                    chunk_syncer_arn=PLACEHOLDER_ARN.format("chunk-syncer"),
                    report_arn=PLACEHOLDER_ARN.format("report"),
                )
            ),
        ),
    ]


def docs_markdown() -> str:
    """The whole of docs/state-machines.md."""
    parts = [_DOC_HEADER]
    for title, text, machine in _doc_machines():
        parts.append(f"\n## {title}\n\n{text}\n\n```mermaid\n{to_mermaid(machine)}```\n")
    parts.append("\n## Definitions (ASL JSON)\n")
    for title, _, machine in _doc_machines():
        parts.append(f"\n### {title}\n\n```json\n{machine.to_json()}\n```\n")
    return "".join(parts)


def _render_docs(args) -> int:
    return _write(docs_markdown(), args.output)
