"""What the scheduler tests look up about the daily DAG's sync task on the local cloud."""

from __future__ import annotations

from datetime import datetime, timedelta

from step_patterns.naming import stable_name

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"


def executions_since(cloud, since: datetime) -> list[dict]:
    """Every execution of the task's state machine started since ``since`` (whatever its name)."""
    sfn = cloud.client("stepfunctions")
    machine = stable_name("step-patterns", DAG_ID, TASK_ID)
    arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == machine)
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
    return [e for page in pages for e in page["executions"] if e["startDate"] >= since - timedelta(seconds=1)]
