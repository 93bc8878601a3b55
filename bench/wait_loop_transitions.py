"""State transitions of the wait loop for one long statement: our backoff vs the seed's fixed 10 s Wait.

Runs on the local cloud with the PostgreSQL warehouse (``SELECT pg_sleep(N)`` is a statement
of a known length). Prints, per loop: polls, state transitions (StateEntered events), history
events, and how long after the statement finished the execution noticed.

    uv run python bench/wait_loop_transitions.py [--seconds 60] [--pg-url postgresql://...]
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
from step_patterns_sandbox.redshift_data.pg_probe import postgres_url
from step_patterns.asl import WaitLoopSettings, build_wait_loop

LOOPS = {
    "ours (backoff 2 s x2 .. 60 s)": dict(min_seconds=2, max_seconds=60, factor=2.0),
    "seed (fixed 10 s Wait)": dict(min_seconds=10, max_seconds=10, factor=1.0),
}


def run_loop(cloud: LocalCloud, seconds: float, loop: dict) -> dict:
    functions = cloud.endpoints.functions
    settings = WaitLoopSettings(
        statement_starter_arn=functions["statement-start"],
        statement_status_arn=functions["statement-status"],
        **loop,
    )
    sfn = cloud.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"bench-{uuid.uuid4().hex[:8]}", definition=build_wait_loop(settings).to_json(),
        roleArn=cloud.endpoints.states_role_arn,
    )["stateMachineArn"]
    statement = {
        "sql": f"SELECT pg_sleep({seconds})", "parameters": [], "database": "dev",
        "cluster_identifier": cloud.endpoints.cluster_identifier, "workgroup_name": None,
        "secret_arn": cloud.endpoints.redshift_secret_arn, "db_user": None, "statement_name": "bench",
    }
    started = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(statement))["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    events = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=execution, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    polls = sum(1 for e in entered if e["stateEnteredEventDetails"]["name"] == "GetStatementStatus")
    return {
        "status": described["status"],
        "polls": polls,
        "transitions": len(entered),
        "events": len(events),
        "elapsed_s": elapsed,
        "noticed_after_s": elapsed - seconds,
    }


def polls_needed(schedule: tuple[int, ...], seconds: float) -> int:
    """Polls until the cumulative wait reaches ``seconds`` (the first Wait comes before poll 1)."""
    waited, polls = 0.0, 0
    while waited < seconds:
        waited += schedule[min(polls, len(schedule) - 1)]
        polls += 1
    return polls


def projected_rows(durations=(60, 600, 3600, 6 * 3600)) -> list[str]:
    """Transitions for longer statements, from the loop's shape: 2 fixed + 5 per poll - 1."""
    rows = []
    for seconds in durations:
        cells = []
        for loop in LOOPS.values():
            settings = WaitLoopSettings(statement_starter_arn="arn:x", statement_status_arn="arn:y", **loop)
            polls = polls_needed(settings.schedule, seconds)
            cells.append(f"{polls} polls / {5 * polls + 1} transitions")
        rows.append(f"| {seconds / 60:g} min | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pg-url", default=postgres_url())
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as state_dir:
        settings = CloudSettings(port=0, state_dir=Path(state_dir), warehouse_url=args.pg_url, with_pipedrive=False)
        with LocalCloud(settings) as cloud:
            rows = {name: run_loop(cloud, args.seconds, loop) for name, loop in LOOPS.items()}
    print(f"\nWait loop, one {args.seconds:.0f} s statement (SELECT pg_sleep), lambda variant, local cloud\n")
    print(f"| loop | status | polls | state transitions | history events | elapsed s | noticed after s |")
    print(f"|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['status']} | {r['polls']} | {r['transitions']} | {r['events']} | "
              f"{r['elapsed_s']:.1f} | {r['noticed_after_s']:.1f} |")
    print("\nProjected from the loop's shape (5 transitions per poll + 1), same schedules:\n")
    print("| statement | " + " | ".join(LOOPS) + " |")
    print("|---|---|---|")
    for row in projected_rows():
        print(row)


if __name__ == "__main__":
    main()
