"""Progress of a chunked-iterator execution, for the task log while the task is deferred.

Read from what the run already writes: the Map Run's item counts (chunks done of total)
and the chunk syncers' segment results in S3 (records, requests, time spent sending).
Only result objects not seen before are fetched, so a poll costs one listing.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from step_lambdas.contract import layout
from step_lambdas.contract.results import SegmentResult


class ChunkedIteratorProgress:
    def __init__(self, source: dict[str, Any]):
        self.bucket = source["bucket"]
        self.prefix = source["prefix"]
        self.limit_per_second = float(source.get("limit_per_second") or 0)
        self._seen: set[str] = set()
        self.records = self.requests = 0
        self.sending_s = 0.0

    async def line(self, sfn: Any, trigger) -> str:
        parts = []
        chunks = await _chunk_counts(sfn, trigger.execution_arn)
        if chunks:
            parts.append(f"chunks {chunks['succeeded']} of {chunks['total']} done, {chunks['running']} running")
        try:
            await self._read_new_results(trigger)
        except Exception as error:  # progress is informative; never fail the wait for it
            parts.append(f"(results not readable: {error})")
        if self.records:
            rate = self.requests / self.sending_s if self.sending_s else 0.0
            limit = f" of a {self.limit_per_second:.0f}/s limit" if self.limit_per_second else ""
            parts.append(f"{self.records} records synced, {rate:.1f} requests/s{limit}")
            if chunks and chunks["succeeded"] and chunks["total"] > chunks["succeeded"]:
                per_chunk_s = self.sending_s / max(chunks["succeeded"], 1)
                eta = per_chunk_s * (chunks["total"] - chunks["succeeded"])
                parts.append(f"ETA {eta / 60:.0f} min {eta % 60:.0f} s")
        return "; ".join(parts) if parts else "no chunk finished yet"

    async def _read_new_results(self, trigger) -> None:
        hook = AwsBaseHook(client_type="s3", **trigger.hook_kwargs())
        async with await hook.get_async_conn() as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=layout.results_prefix(self.prefix)):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key in self._seen or layout.parse_segment_key(key, self.prefix) is None:
                        continue
                    body = await (await s3.get_object(Bucket=self.bucket, Key=key))["Body"].read()
                    counts = SegmentResult.from_json(json.loads(body)).counts
                    self._seen.add(key)
                    self.records += counts.records
                    self.requests += counts.requests
                    self.sending_s += counts.elapsed_s


async def _chunk_counts(sfn: Any, execution_arn: str) -> dict[str, int] | None:
    runs = (await sfn.list_map_runs(executionArn=execution_arn)).get("mapRuns", [])
    if not runs:
        return None
    counts = (await sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"]))["itemCounts"]
    return {name: int(counts.get(name, 0)) for name in ("succeeded", "running", "failed", "total")}
