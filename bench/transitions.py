"""State transitions of a chunked-iterator sync: per chunk and per record.

Standard workflows are billed per state transition and capped at 25,000 history events,
so this is what a sync costs in Step Functions. Runs on the local cloud with a fast
Pipedrive sandbox (the rate limit does not change the count, only the chunk size does).

    uv run python bench/transitions.py [--records 10000] [--chunk-size 1000] [--map-mode DISTRIBUTED]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from pathlib import Path

from step_patterns_sandbox.cloud import CloudSettings, LocalCloud
from step_patterns_sandbox.demo_data import seed_leads
from step_patterns.asl import ChunkedIteratorSettings, build_chunked_iterator

SQL = "SELECT lead_id, company, source, score FROM leads ORDER BY lead_id"
MAPPING = {"lead_id": "external_id", "company": "title", "source": "Lead source", "score": "Score"}


def history(sfn, execution_arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def transitions(events: list[dict]) -> int:
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=1_000)
    parser.add_argument("--map-mode", default="DISTRIBUTED", choices=["DISTRIBUTED", "INLINE"])
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as state_dir:
        settings = CloudSettings(port=0, state_dir=Path(state_dir),
                                 pipedrive={"burst_limit": 480, "window_s": 2.0, "latency_ms": 0})
        with LocalCloud(settings) as cloud:
            ep = cloud.endpoints
            seed_leads(cloud.warehouse, days=1, per_day=args.records, last_day="2026-11-27")
            machine = build_chunked_iterator(ChunkedIteratorSettings(
                query_executor_arn=ep.functions["query-executor"], chunk_syncer_arn=ep.functions["chunk-syncer"],
                report_arn=ep.functions["report"], map_mode=args.map_mode))
            sfn = cloud.client("stepfunctions")
            arn = sfn.create_state_machine(name=f"bench-{uuid.uuid4().hex[:8]}", definition=machine.to_json(),
                                           roleArn=ep.states_role_arn)["stateMachineArn"]
            execution_input = {
                "query": {"sql": SQL, "parameters": [], "database": ep.database,
                          "cluster_identifier": ep.cluster_identifier, "secret_arn": ep.redshift_secret_arn},
                "target": {"external_id_field": "External ID", "field_mapping": MAPPING,
                           "pipedrive_secret_arn": ep.pipedrive_secret_arn, "pipedrive_base_url": ep.pipedrive_base_url,
                           "rate": {"requests": 480, "per_seconds": 2.0}, "concurrency": 16},
                "output": {"bucket": ep.bucket, "prefix": "bench/run", "sync_state_prefix": "bench/state"},
                "chunk_size": args.chunk_size,
                "map_mode": args.map_mode,
            }
            started = time.monotonic()
            execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex,
                                            input=json.dumps(execution_input))["executionArn"]
            while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            report = json.loads(described.get("output") or "{}")
            parent = history(sfn, execution)
            children = []
            child_note = ""
            for run in sfn.list_map_runs(executionArn=execution).get("mapRuns", []) if args.map_mode == "DISTRIBUTED" else []:
                try:
                    for child in sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"]:
                        children.append(history(sfn, child["executionArn"]))
                except sfn.exceptions.ClientError as error:
                    # moto 5.2.5 answers 500 here; its parent history holds the children's events
                    child_note = f" (child executions not listable on this backend: {error.response['Error']['Code']})"
    chunks = -(-args.records // args.chunk_size)
    parent_t = transitions(parent)
    child_t = sum(transitions(h) for h in children)
    total = parent_t + child_t
    print(f"\n{args.records} records, {chunks} chunks of {args.chunk_size}, {args.map_mode} Map: "
          f"{described['status']} in {elapsed:.0f} s, {report.get('created')} created\n")
    print("| where | state transitions | history events |")
    print("|---|---:|---:|")
    print(f"| parent execution | {parent_t} | {len(parent)} |")
    print(f"| child executions ({len(children)}){child_note} | {child_t} | {sum(len(h) for h in children)} |")
    print(f"| total | {total} | {len(parent) + sum(len(h) for h in children)} |")
    print(f"\nper chunk: {total / chunks:.1f} transitions; per record: {total / args.records:.4f}")
    by_state: dict[str, int] = {}
    for event in parent + [e for h in children for e in h]:
        if event["type"].endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            by_state[name] = by_state.get(name, 0) + 1
    print("states entered: " + ", ".join(f"{name} {count}" for name, count in sorted(by_state.items())))


if __name__ == "__main__":
    main()
