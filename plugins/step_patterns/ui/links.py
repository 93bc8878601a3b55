"""The task instance's link to its run on the "Pipedrive syncs" page."""

from __future__ import annotations

from urllib.parse import quote

from airflow.configuration import conf
from airflow.sdk import BaseOperatorLink

from step_patterns.ui import URL_PREFIX


def run_page_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/{quote(task_id, safe='')}"


class PipedriveSyncLink(BaseOperatorLink):
    """Computed when the task ends and kept in XCom (Airflow 3 stores every operator link there)."""

    name = "Pipedrive sync"

    def get_link(self, operator, *, ti_key) -> str:
        base = conf.get("api", "base_url", fallback="") or ""
        return base.rstrip("/") + run_page_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id)
