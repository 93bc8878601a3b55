"""The "Pipedrive syncs" page: every chunked-iterator run, its counts, chart and failed records.

An Airflow 3 plugin (``step_patterns.ui.plugin``, entry point ``airflow.plugins``): a FastAPI
app the api-server mounts under ``/pipedrive-syncs`` and a menu entry in the Airflow UI. Reads
runs and reports from Airflow's metadata database and a run's objects from S3 through the
task's own AWS connection; every request is checked against Airflow's auth manager.
"""

URL_PREFIX = "/pipedrive-syncs"
# XCom key: where a chunked-iterator run keeps its objects, pushed before it starts syncing,
# so the page finds the run's report and failures even when the task failed.
SYNC_LOCATION_KEY = "step_patterns_sync"
