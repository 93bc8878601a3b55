"""Benchmark: the seed's fixed-delay fan-out vs our rolling-window limiter, on the Pipedrive sandbox.

Figures, not a test. For each burst limit (20/2 s and 80/2 s by default), latency 100 +- 30 ms:

- naive (the seed): records cut into chunks of 20, one worker per chunk (m workers, all in
  parallel, started t/m apart like the seed's delayed invocations), each worker sends its
  records one after another with a fixed delay t after each response, per record a search
  then a POST or PATCH, no retry. t is solved from the seed's formula with the 900 s
  Lambda budget replaced by the time T the run needs at exactly the limit's average rate
  (T = 2 * records / (N/W); each worker sends every T / (2 * 20) s, so t = that - latency):
  the most generous tuning the seed's method allows (aggregate rate = the limit, on average).
- ours: ``step_lambdas.pipedrive.sync_records`` with K workers sharing one limiter.

Each approach gets a first sync and a re-sync with 10 % of the records changed.
Usage: uv run python bench/rate_limit.py [--records 2000] [--limits 20/2,80/2] [--png PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from step_patterns_sandbox.pipedrive import PipedriveSandbox, PipedriveSettings  # noqa: E402
from step_lambdas.pipedrive import (  # noqa: E402
    LocalFileSyncState,
    PipedriveClient,
    SlidingWindowLimiter,
    SyncOptions,
    parse_rate,
    sync_records,
)

TOKEN = "sandbox-token"
LATENCY_MS, JITTER_MS = 100, 30
CHUNK = 20  # records per slave Lambda in the seed


class TimingSession(requests.Session):
    """Records the send time of every request (client side, including refused ones)."""

    def __init__(self, times: list[float], pool: int = 16) -> None:
        super().__init__()
        self.times = times
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        self.mount("http://", adapter)

    def request(self, *args, **kwargs):  # type: ignore[override]
        self.times.append(time.time())
        return super().request(*args, **kwargs)


@dataclass
class Run:
    approach: str
    limit: str
    phase: str
    records: int
    changed: int
    requests: int
    responses_429: int
    lost: int
    duplicates: int
    elapsed_s: float
    limit_per_s: float
    send_times: list[float] = field(default_factory=list, repr=False)

    @property
    def utilization(self) -> float:
        return (self.requests - self.responses_429) / self.elapsed_s / self.limit_per_s

    def row(self) -> str:
        per_changed = self.requests / self.changed if self.changed else float("nan")
        pct = 100.0 * self.responses_429 / self.requests if self.requests else 0.0
        return (f"| {self.limit} | {self.phase} | {self.approach} | {self.utilization:.3f} | "
                f"{self.responses_429} ({pct:.2f} %) | {self.lost} | {self.duplicates} | "
                f"{self.requests / self.records:.3f} | {per_changed:.3f} | {self.elapsed_s:.1f} |")


def make_records(n: int, changed: set[int] | None = None) -> list[dict]:
    changed = changed or set()
    return [{"external_id": f"BENCH-{i:06d}", "title": f"Deal {i}" + (" (changed)" if i in changed else ""),
             "value": i, "currency": "EUR", "custom_fields": {"Score": float(i % 97)}} for i in range(n)]


def naive_sync(base_url: str, records: list[dict], ext_key: str, limit: int, window: float,
               times: list[float]) -> tuple[int, int]:
    """The seed's approach; returns (lost records, 429 responses)."""
    m = math.ceil(len(records) / CHUNK)
    requests_per_worker = 2 * CHUNK  # search + create/update per record
    # Seed: T_e + T_p + m*t = 900. We give the naive run the time it needs at exactly the
    # limit's average rate (T = requests / (N/W)), so each worker sends every T/requests_per_worker s.
    period = (2 * len(records)) / (limit / window) / requests_per_worker
    delay = max(period - LATENCY_MS / 1000, 0.0)  # the fixed t after each response
    lost = [0]
    refused = [0]
    lock = threading.Lock()

    def worker(k: int, chunk: list[dict]) -> None:
        time.sleep(k * period / m)  # invocations staggered, as the seed delays them
        session = TimingSession(times, pool=1)
        headers = {"x-api-token": TOKEN}
        for record in chunk:
            ok = False
            body = {k2: v for k2, v in record.items() if k2 != "external_id"}
            body["custom_fields"] = {**{}, ext_key: record["external_id"]}
            try:
                found = session.get(f"{base_url}/api/v2/deals/search", headers=headers, timeout=30,
                                    params={"term": record["external_id"], "fields": "custom_fields",
                                            "exact_match": "true"})
                time.sleep(delay)
                if found.status_code == 200:
                    items = found.json()["data"]["items"]
                    if items:
                        sent = session.patch(f"{base_url}/api/v2/deals/{items[0]['item']['id']}",
                                             json=body, headers=headers, timeout=30)
                    else:
                        sent = session.post(f"{base_url}/api/v2/deals", json=body, headers=headers, timeout=30)
                    time.sleep(delay)
                    ok = sent.status_code == 200
                    with lock:
                        refused[0] += sent.status_code == 429
                else:
                    with lock:
                        refused[0] += found.status_code == 429
            except requests.RequestException:
                ok = False
            if not ok:
                with lock:
                    lost[0] += 1

    chunks = [records[i:i + CHUNK] for i in range(0, len(records), CHUNK)]
    threads = [threading.Thread(target=worker, args=(k, c)) for k, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lost[0], refused[0]


def run_limit(rate: str, n: int, workdir: Path) -> list[Run]:
    limit, window = parse_rate(rate)
    changed = set(range(0, n, 10))  # 10 % of the records change before the re-sync
    runs: list[Run] = []
    for approach in ("naive", "ours"):
        settings = PipedriveSettings(burst_limit=limit, window_s=window, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS,
                                     block_after_ignored_429=None, seed=1)
        with PipedriveSandbox(settings, host="127.0.0.1", port=0) as box:
            ext_key = box.field_key("External ID")
            state_path = workdir / f"state-{approach}-{limit}.jsonl"
            for phase, recs, n_changed in (("first sync", make_records(n), n),
                                           ("re-sync 10 %", make_records(n, changed), len(changed))):
                before = box.stats()
                times: list[float] = []
                began = time.monotonic()
                if approach == "naive":
                    lost, _ = naive_sync(box.base_url, recs, ext_key, limit, window, times)
                else:
                    client = PipedriveClient(box.base_url, TOKEN, SlidingWindowLimiter(None, window),
                                             session=TimingSession(times))
                    report = sync_records(recs, client=client, state=LocalFileSyncState(state_path),
                                          options=SyncOptions(concurrency=8))
                    s = report.summary
                    lost = s.records - (s.created + s.updated + s.unchanged) + (n - s.records)
                elapsed = time.monotonic() - began
                after = box.stats()
                runs.append(Run(approach, rate, phase, n, n_changed,
                                requests=after["requests"] - before["requests"],
                                responses_429=after["responses_429"] - before["responses_429"],
                                lost=lost, duplicates=after["duplicate_external_ids"], elapsed_s=elapsed,
                                limit_per_s=limit / window, send_times=times))
                print(runs[-1].row(), flush=True)
    return runs


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts = [r for r in runs if r.phase == "first sync"]
    limits = sorted({r.limit for r in firsts}, key=lambda s: parse_rate(s)[0])
    fig, axes = plt.subplots(len(limits), 1, figsize=(11, 3.6 * len(limits)), squeeze=False)
    for ax, rate in zip(axes[:, 0], limits):
        limit, window = parse_rate(rate)
        for r in (r for r in firsts if r.limit == rate):
            t0 = min(r.send_times)
            times = sorted(t - t0 for t in r.send_times)
            xs, ys, lo = [], [], 0
            for hi, t in enumerate(times):  # requests sent in the trailing window ending at each send
                while times[lo] <= t - window:
                    lo += 1
                xs.append(t)
                ys.append(hi - lo + 1)
            ax.plot(xs, ys, label=f"{r.approach} ({r.responses_429} x 429)", linewidth=0.8)
        ax.axhline(limit, color="red", linestyle="--", label=f"limit {rate}")
        count = next(r.records for r in firsts if r.limit == rate)
        ax.set_title(f"Requests sent in the trailing {window:g} s window, first sync of {count} records")
        ax.set_xlabel("seconds since first request")
        ax.set_ylabel("requests in window")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--limits", default="20/2,80/2",
                        help="comma-separated N/Ws, each optionally :RECORDS to override --records")
    parser.add_argument("--png", type=Path, default=Path("docs/rate_limit.png"))
    args = parser.parse_args(argv)
    print("| limit | phase | approach | utilization | 429s | lost | duplicates | requests/record | "
          "requests/changed record | elapsed s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as workdir:
        for spec in args.limits.split(","):
            rate, _, count = spec.strip().partition(":")
            runs.extend(run_limit(rate, int(count) if count else args.records, Path(workdir)))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    plot(runs, args.png)
    print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
