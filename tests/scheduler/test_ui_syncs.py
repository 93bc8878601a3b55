"""The "Pipedrive syncs" page, served by the api-server's plugin app, in Debian's Chromium.

One scheduled run of the daily DAG with three leads that break the record contract (the task
fails: more failed records than ``max_failed_records=0``). The page lists that run with the
report's counts, its page draws the requests chart and lists the failed records exactly as
``failures.jsonl`` has them, the task instance's extra link opens that page, and a user whose
role may not read DAGs gets no syncs and a 403 for the run.

The simple auth manager cannot deny one DAG while allowing another (only roles, and teams
in multi-team mode), so the denied user is one without a role: the auth manager's
``get_authorized_dag_ids`` and ``is_authorized_dag`` say no for every DAG, as they would for
one DAG under a per-DAG auth manager (FAB, Keycloak).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests

from step_patterns_sandbox.demo_data import seed_leads
from browser import CHROMIUM, CHROMIUM_ARGS, browser_or_skip

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(400)]

DAG_ID = "redshift_to_pipedrive"
TASK_ID = "sync_leads"
PAGE = "/pipedrive-syncs"
LINK = "Pipedrive sync"
LEADS = 12


def test_the_page_shows_a_failed_sync_to_who_may_see_it(airflow_services, cloud, clean_slate, artifacts_dir):
    api, base = airflow_services.api, airflow_services.url
    # a day no other scheduler test runs (the backfill takes 1-3 days back, the others 5, 6 and 8)
    day = datetime.now(UTC).date() - timedelta(days=10)
    seed_leads(cloud.warehouse, days=1, per_day=LEADS, last_day=day.isoformat())
    broken = [lead for (lead,) in cloud.warehouse.execute("SELECT lead_id FROM leads ORDER BY lead_id LIMIT 3")]
    cloud.warehouse.execute("UPDATE leads SET company = ' ' WHERE lead_id IN (:a, :b)", {"a": broken[0], "b": broken[1]})
    cloud.warehouse.execute("UPDATE leads SET currency = 'euro' WHERE lead_id = :c", {"c": broken[2]})
    run_id = f"ui_syncs_{int(time.time())}"
    api.unpause(DAG_ID)
    try:
        api.trigger(DAG_ID, logical_date=f"{day + timedelta(days=1)}T00:00:00Z", run_id=run_id)
        ti = api.wait_for_task_state(DAG_ID, run_id, TASK_ID, {"success", "failed"}, timeout=240)
    finally:
        api.set_paused(DAG_ID, True)
    assert ti["state"] == "failed", ti  # 3 failed records > max_failed_records=0

    s3, bucket = cloud.client("s3"), cloud.endpoints.bucket
    prefix = f"step-patterns/runs/{DAG_ID}/{TASK_ID}/{day.isoformat()}"
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    failures = [json.loads(line) for line in
                s3.get_object(Bucket=bucket, Key=f"{prefix}/failures.jsonl")["Body"].read().splitlines() if line]
    assert (report["records"], report["failed"], report["created"]) == (LEADS, 3, LEADS - 3), report
    assert sorted(f["external_id"] for f in failures) == sorted(broken)

    # over HTTP, as the UI's user (all-admins mode signs every request in as admin)
    admin = {"Authorization": f"Bearer {api.token()}"}
    listed = requests.get(f"{base}{PAGE}/api/runs", headers=admin, timeout=30).json()["runs"]
    row = next(r for r in listed if r["run_id"] == run_id)
    assert (row["state"], row["report_source"]) == ("failed", "s3")
    for name in ("records", "created", "updated", "unchanged", "failed", "responses_429", "requests"):
        assert row[name] == report[name], (name, row, report)
    assert row["limit_per_second"] == 10.0  # the DAG's 20/2s

    run_path = f"{PAGE}/runs/{DAG_ID}/{quote(run_id, safe='')}/{TASK_ID}"
    api_path = run_path.replace(PAGE, f"{PAGE}/api", 1)
    detail = requests.get(f"{base}{api_path}", headers=admin, timeout=30).json()
    assert detail["problem"] is None and detail["per_window"], detail
    # the syncers' windows hold every request they sent
    assert sum(w["requests"] for w in detail["windows"]) == report["requests"], detail["windows"]
    assert detail["failures"]["total"] == len(failures)

    # a user whose role may read no DAG: no syncs listed, the run's data refused
    nobody = {"Authorization": f"Bearer {_token_without_role(airflow_services)}"}
    denied = requests.get(f"{base}{PAGE}/api/runs", headers=nobody, timeout=30)
    assert denied.status_code == 200 and denied.json()["runs"] == [], denied.text
    for path in (run_path, api_path):
        refused = requests.get(f"{base}{path}", headers=nobody, timeout=30)
        assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
        assert broken[0] not in refused.text

    sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{base}{PAGE}/")
            listed_row = page.locator(f'#runs tr[data-run-id="{run_id}"]')
            listed_row.wait_for(timeout=30_000)
            assert listed_row.locator("td.failed").inner_text() == "3"
            assert listed_row.locator("td.created").inner_text() == str(LEADS - 3)
            assert listed_row.locator("td.state").inner_text() == "failed"
            page.screenshot(path=str(artifacts_dir / "pipedrive-syncs-list.png"), full_page=True)

            # the task instance's extra link opens the run's page
            page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{TASK_ID}/details")
            link = page.get_by_role("link", name=LINK)
            link.wait_for(timeout=30_000)
            href = link.get_attribute("href") or ""
            assert href.endswith(run_path), href
            page.goto(href)
            page.locator("#requests-chart").wait_for(timeout=30_000)
            assert page.locator("#requests-chart rect.bar").count() >= 1
            assert page.locator("#requests-chart line.limit").count() == 1
            shown = page.locator("#failures tbody tr")
            assert sorted(shown.locator("td.external-id").all_inner_texts()) == sorted(broken)
            by_id = {f["external_id"]: f for f in failures}
            for i in range(shown.count()):
                cells = shown.nth(i)
                expected = by_id[cells.locator("td.external-id").inner_text()]
                assert cells.locator("td.reasons").inner_text().splitlines() == expected["reasons"]
                assert cells.locator("td.fields").inner_text() in expected["reasons"][0]
            page.screenshot(path=str(artifacts_dir / "pipedrive-syncs-run.png"), full_page=True)

            # the same page inside the Airflow UI (its menu entry)
            page.goto(f"{base}/plugin/pipedrive-syncs")
            page.frame_locator("iframe").locator(f'#runs tr[data-run-id="{run_id}"]').wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts_dir / "pipedrive-syncs-in-airflow.png"))

            outsider = browser.new_context(extra_http_headers=nobody).new_page()
            answer = outsider.goto(f"{base}{run_path}")
            assert answer.status == 403
            outsider.goto(f"{base}{PAGE}/")
            assert outsider.locator("#runs td.empty").inner_text() == "No Pipedrive syncs you may see."
        except Exception:
            page.screenshot(path=str(artifacts_dir / "pipedrive-syncs-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _token_without_role(services) -> str:
    """A JWT the api-server accepts (signed with its secret) for a user with no role."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    signer = JWTGenerator(secret_key=services.env()["AIRFLOW__API_AUTH__JWT_SECRET"], valid_for=600,
                          audience=SimpleAuthManager._get_jwt_audience())
    return signer.generate({"sub": "no-dags", "role": None, "teams": None})
