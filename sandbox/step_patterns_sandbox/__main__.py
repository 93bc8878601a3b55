"""``python -m step_patterns_sandbox up``: run the local cloud until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up"], help="start the local cloud and keep it running")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055, help="moto server port (0: any free port)")
    parser.add_argument("--state-dir", type=Path, default=Path(".sandbox"))
    parser.add_argument(
        "--warehouse-url",
        help="duckdb:///path.duckdb (default: <state-dir>/warehouse.duckdb) or postgresql://...",
    )
    parser.add_argument("--no-pipedrive", action="store_true", help="do not start the Pipedrive sandbox")
    parser.add_argument("--pipedrive-burst-limit", type=int, default=20)
    parser.add_argument("--pipedrive-window", type=float, default=2.0)
    parser.add_argument("--pipedrive-latency-ms", type=float, default=100.0)
    parser.add_argument("--pipedrive-jitter-ms", type=float, default=30.0)
    parser.add_argument("--env-file", type=Path, help="also write the Airflow environment to this file")


def run(args: argparse.Namespace) -> int:
    # imported here: `step-patterns --help` (which registers this command) must not load moto
    from step_patterns_sandbox.cloud import CloudSettings, LocalCloud, airflow_environment

    settings = CloudSettings(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        warehouse_url=args.warehouse_url,
        with_pipedrive=not args.no_pipedrive,
        pipedrive={
            "burst_limit": args.pipedrive_burst_limit,
            "window_s": args.pipedrive_window,
            "latency_ms": args.pipedrive_latency_ms,
            "jitter_ms": args.pipedrive_jitter_ms,
        },
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cloud = LocalCloud(settings)
    endpoints = cloud.start()
    try:
        environment = airflow_environment(endpoints)
        lines = [f"{name}='{value}'" for name, value in environment.items()]
        if args.env_file:
            args.env_file.write_text("\n".join(lines) + "\n")
        print("step-patterns local cloud is up", flush=True)
        print(f"  AWS endpoint:   {endpoints.aws_endpoint_url} (region {endpoints.region})")
        print(f"  Pipedrive:      {endpoints.pipedrive_base_url or 'off'}")
        print(f"  Warehouse:      {endpoints.warehouse_url}")
        print(f"  Endpoints file: {settings.state_dir / 'endpoints.json'}")
        print("Airflow environment (export these where Airflow runs):")
        for line in lines:
            print(f"  export {line}")
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        cloud.stop()
        print("step-patterns local cloud stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m step_patterns_sandbox", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
