"""The Airflow plugin (entry point ``airflow.plugins``): the page's app and its menu entry."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from step_patterns.ui import URL_PREFIX


def _app():
    from step_patterns.ui.app import app

    return app


class PipedriveSyncsPlugin(AirflowPlugin):
    name = "step_patterns_pipedrive_syncs"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Pipedrive syncs"}]
    # the Airflow UI shows the page in its own frame, under Browse
    external_views = [{
        "name": "Pipedrive syncs", "href": f"{URL_PREFIX}/", "destination": "nav", "category": "browse",
        "url_route": "pipedrive-syncs",
    }]
