"""The FastAPI app behind the "Pipedrive syncs" page (mounted by the api-server under /pipedrive-syncs).

Pages are server-rendered HTML (one small SVG chart, no JavaScript bundle to build); the same
data is JSON under ``/api``. Who may see what is Airflow's auth manager's answer: the list
holds only the DAGs the user may read, a run's page answers 403 for any other DAG.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from step_patterns.ui import URL_PREFIX
from step_patterns.ui.data import RunDetail, RunObjects, SyncRun, Window, get_run, list_runs
from step_patterns.ui.links import run_page_path

PER_PAGE = 50
FAILURES_PER_PAGE = 25

app = FastAPI(title="Pipedrive syncs", description="Chunked-iterator runs of step-patterns: counts, chart, failures")
can_read_run = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))


def _session():
    from airflow.utils.session import create_session

    return create_session()


def _readable_dag_ids(user) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_authorized_dag_ids(user=user, method="GET")


def runs_page(user, page: int) -> tuple[list[SyncRun], int]:
    with _session() as session:
        runs, total = list_runs(session, _readable_dag_ids(user), limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    for run in runs:
        if run.report is None:  # the task failed after the report (too many failed records): report.json
            try:
                run.report = RunObjects(run).report()
                run.report_source = "s3" if run.report else "none"
            except Exception:  # S3 unreachable for this run: the row shows no counts, the page still answers
                run.report_source = "none"
    return runs, total


def run_detail(dag_id: str, run_id: str, task_id: str, map_index: int, page: int) -> RunDetail:
    with _session() as session:
        run = get_run(session, dag_id, run_id, task_id, map_index)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no Pipedrive sync of {dag_id}.{task_id} in run {run_id}")
    detail = RunDetail(run)
    try:
        objects = RunObjects(run)
        if run.report is None:
            run.report = objects.report()
            run.report_source = "s3" if run.report else "none"
        detail.windows, detail.per_window = objects.windows(run.limit)
        detail.failures = objects.failures(page, FAILURES_PER_PAGE)
    except Exception as error:  # shown on the page: which connection, what went wrong
        detail.problem = (f"cannot read s3://{run.location.get('bucket')}/{run.location.get('prefix')} with "
                          f"connection {run.location.get('aws_conn_id')!r}: {type(error).__name__}: {error}")
    return detail


# -- JSON ----------------------------------------------------------------
@app.get("/api/runs")
def api_runs(user: GetUserDep, page: int = Query(1, ge=1)) -> dict[str, Any]:
    runs, total = runs_page(user, page)
    return {"runs": [r.summary() for r in runs], "total": total, "page": page, "per_page": PER_PAGE}


@app.get("/api/runs/{dag_id}/{run_id}/{task_id}", dependencies=[can_read_run])
def api_run(dag_id: str, run_id: str, task_id: str, map_index: int = -1, page: int = Query(1, ge=1)) -> dict:
    detail = run_detail(dag_id, run_id, task_id, map_index, page)
    failures = detail.failures
    return {
        "run": detail.run.summary(),
        "report": detail.run.report,
        "windows": [w.__dict__ for w in detail.windows],
        "per_window": detail.per_window,
        "failures": failures.__dict__ if failures else None,
        "problem": detail.problem,
    }


# -- HTML ----------------------------------------------------------------
@app.get("/", response_class=HTMLResponse)
def html_runs(user: GetUserDep, page: int = Query(1, ge=1)) -> str:
    runs, total = runs_page(user, page)
    rows = "".join(_run_row(run) for run in runs) or (
        '<tr><td colspan="14" class="empty">No Pipedrive syncs you may see.</td></tr>')
    body = f"""
<h1>Pipedrive syncs</h1>
<p class="muted">Every chunked-iterator task run of the DAGs you may read, newest data interval first.
Requests/s is the run's average against the task's rate limit.</p>
<table id="runs"><thead><tr>
<th>DAG</th><th>Task</th><th>Data interval</th><th>State</th><th>Records</th><th>Created</th><th>Updated</th>
<th>Unchanged</th><th>Failed</th><th>429s</th><th>Requests</th><th>Requests/s (limit)</th><th>Elapsed</th><th></th>
</tr></thead><tbody>{rows}</tbody></table>
{_pager(page, total, PER_PAGE, URL_PREFIX + "/")}"""
    return _html("Pipedrive syncs", body)


@app.get("/runs/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[can_read_run])
def html_run(dag_id: str, run_id: str, task_id: str, map_index: int = -1, page: int = Query(1, ge=1)) -> str:
    detail = run_detail(dag_id, run_id, task_id, map_index, page)
    run, report = detail.run, detail.run.report or {}
    s = run.summary()
    facts = "".join(f"<dt>{escape(k)}</dt><dd data-field=\"{escape(f)}\">{escape(_text(s.get(f)))}</dd>" for k, f in (
        ("State", "state"), ("Records", "records"), ("Created", "created"), ("Updated", "updated"),
        ("Unchanged", "unchanged"), ("Failed", "failed"), ("429 responses", "responses_429"),
        ("Requests", "requests"), ("Requests/s", "requests_per_second"), ("Limit/s", "limit_per_second"),
        ("Elapsed (s)", "elapsed_s"),
    ))
    problem = f'<p class="problem">{escape(detail.problem)}</p>' if detail.problem else ""
    failures = detail.failures
    failure_rows = "".join(
        f"<tr><td class=\"external-id\">{escape(_text(f['external_id']))}</td>"
        f"<td class=\"fields\">{escape(', '.join(f['fields']))}</td>"
        f"<td class=\"reasons\">{'<br>'.join(escape(r) for r in f['reasons'])}</td>"
        f"<td>{escape(_text(f['source']))} {escape(f['where'])}</td></tr>"
        for f in (failures.items if failures else [])
    ) or '<tr><td colspan="4" class="empty">No failed records.</td></tr>'
    path = run_page_path(dag_id, run_id, task_id)
    pager = _pager(page, failures.total, FAILURES_PER_PAGE, path, {"map_index": map_index} if map_index != -1 else {}) if failures else ""
    body = f"""
<p><a href="{URL_PREFIX}/">&larr; All Pipedrive syncs</a></p>
<h1>{escape(dag_id)}.{escape(task_id)}</h1>
<p class="muted">Run {escape(run_id)} &middot; data interval {escape(_text(s['data_interval_start']))} &rarr;
{escape(_text(s['data_interval_end']))} &middot; report from {escape(run.report_source)}</p>
{problem}
<dl id="report">{facts}</dl>
<h2>Requests per {_window_s(run):g} s window</h2>
<p class="muted">{_chart_note(detail.per_window, _window_s(run))}</p>
{_chart(detail.windows, run)}
<h2>Failed records ({failures.total if failures else 0})</h2>
<p class="muted">{escape(failures.location) if failures else ""}</p>
<table id="failures"><thead><tr><th>External id</th><th>Field</th><th>Reason</th><th>Where</th></tr></thead>
<tbody>{failure_rows}</tbody></table>
{pager}
<pre class="muted">{escape(_text(report.get("not_synced_because") or ""))}</pre>"""
    return _html(f"Pipedrive sync {dag_id}.{task_id} {run_id}", body)


def _run_row(run: SyncRun) -> str:
    s = run.summary()
    rate = s["requests_per_second"]
    limit = s["limit_per_second"]
    rate_text = f"{_text(rate)} ({limit:g})" if limit else _text(rate)
    cells = [s["dag_id"], s["task_id"], f"{_text(s['data_interval_start'])} → {_text(s['data_interval_end'])}",
             s["state"], s["records"], s["created"], s["updated"], s["unchanged"], s["failed"],
             s["responses_429"], s["requests"], rate_text, _text(s["elapsed_s"]) + (" s" if s["elapsed_s"] else "")]
    names = ["dag", "task", "interval", "state", "records", "created", "updated", "unchanged", "failed",
             "responses_429", "requests", "rate", "elapsed"]
    href = run_page_path(run.dag_id, run.run_id, run.task_id)
    if run.map_index != -1:
        href += f"?map_index={run.map_index}"
    tds = "".join(f'<td class="{n}">{escape(_text(c))}</td>' for n, c in zip(names, cells))
    return (f'<tr data-run-id="{escape(run.run_id)}" data-dag-id="{escape(run.dag_id)}">{tds}'
            f'<td><a class="open" href="{escape(href)}">Open</a></td></tr>')


def _chart_note(per_window: bool, window_s: float) -> str:
    if per_window:
        return (f"Requests the chunk syncers sent in each {window_s:g} s window (UTC start times); "
                "the dashed line is the task's limit.")
    return (f"These syncers did not record windows: each bar is one chunk-syncer segment, its requests over "
            f"its elapsed time (at least one window) per {window_s:g} s; the dashed line is the task's limit.")


def _window_s(run: SyncRun) -> float:
    return run.limit[1] if run.limit else 2.0


def _chart(windows: list[Window], run: SyncRun) -> str:
    """An inline SVG bar chart: requests per window of each segment, the limit as a dashed line."""
    if not windows:
        return '<p class="empty" id="requests-chart-empty">No segment results yet.</p>'
    width, height, pad = 900, 240, 36
    limit = run.limit[0] if run.limit else None
    top = max([w.per_window for w in windows] + [limit or 0, 1]) * 1.15
    step = (width - 2 * pad) / len(windows)
    y = lambda v: height - pad - (height - 2 * pad) * v / top  # noqa: E731
    bars = "".join(
        f'<rect class="bar" x="{pad + i * step + step * 0.1:.1f}" y="{y(w.per_window):.1f}" '
        f'width="{max(step * 0.8, 1):.1f}" height="{height - pad - y(w.per_window):.1f}">'
        f"<title>{escape(w.label)}: {w.requests} requests in {w.elapsed_s:g} s ({w.per_window:g} per window)"
        f"</title></rect>"
        for i, w in enumerate(windows)
    )
    line = (f'<line class="limit" x1="{pad}" x2="{width - pad}" y1="{y(limit):.1f}" y2="{y(limit):.1f}"/>'
            f'<text x="{width - pad}" y="{y(limit) - 4:.1f}" text-anchor="end">limit {limit} per {_window_s(run):g} s</text>'
            if limit else "")
    axis = (f'<line class="axis" x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}"/>'
            f'<text x="{pad - 4}" y="{height - pad}" text-anchor="end">0</text>'
            f'<text x="{pad - 4}" y="{y(top / 1.15):.1f}" text-anchor="end">{top / 1.15:.0f}</text>'
            f'<text x="{pad}" y="{height - 8}">{escape(windows[0].label)}</text>'
            f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">{escape(windows[-1].label)}</text>')
    return (f'<svg id="requests-chart" role="img" aria-label="requests per window against the limit" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">{axis}{bars}{line}</svg>')


def _pager(page: int, total: int, per_page: int, path: str, params: dict | None = None) -> str:
    pages = max((total + per_page - 1) // per_page, 1)
    link = lambda p, text: f'<a href="{escape(path)}?{urlencode({**(params or {}), "page": p})}">{text}</a>'  # noqa: E731
    prev = link(page - 1, "&larr; Previous") if page > 1 else ""
    nxt = link(page + 1, "Next &rarr;") if page < pages else ""
    return f'<p class="pager">{prev} Page {page} of {pages} ({total}) {nxt}</p>'


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a202c}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #e2e8f0;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f7fafc}.muted{color:#718096;font-size:.85rem}
.empty{color:#718096;font-style:italic}.problem{color:#c53030}dl{display:grid;grid-template-columns:max-content auto;
gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}svg .bar{fill:#3182ce}svg .limit{stroke:#e53e3e;stroke-dasharray:6 4;
stroke-width:2}svg .axis{stroke:#a0aec0}svg text{font-size:11px;fill:#4a5568}td.failed{font-weight:600}
"""


def _html(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
