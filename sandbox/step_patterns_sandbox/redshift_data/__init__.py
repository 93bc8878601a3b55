"""The Redshift Data API answered by a real SQL engine, inside moto.

    from step_patterns_sandbox import redshift_data
    warehouse = redshift_data.install("duckdb:///:memory:")   # or a DuckDB file / postgresql:// URL
    ...  # boto3 "redshift-data" clients against moto (server or mock_aws) now run real SQL
    redshift_data.uninstall()

See docs/sandbox-redshift.md for behaviour, differences between engines and limits.
"""

from __future__ import annotations

from . import moto_adapter
from .sfn_sdk import install_sdk_service_names, uninstall_sdk_service_names
from .warehouse import DataApiError, Warehouse

__all__ = [
    "DataApiError",
    "Warehouse",
    "install",
    "install_sdk_service_names",
    "installed",
    "uninstall",
]


def install(
    engine_url: str, *, page_size: int = 1000, workers: int = 4, retention_hours: float = 24.0
) -> Warehouse:
    """Make moto's redshift-data (every account and region) run statements on ``engine_url``.

    Also maps Step Functions' SDK service names (``aws-sdk:redshiftdata:...``) to botocore's.
    Returns the Warehouse (``execute()`` seeds/inspects the same engine). Installs nest:
    ``uninstall()`` goes back to the previously installed engine.
    """
    warehouse = Warehouse(engine_url, page_size=page_size, workers=workers, retention_hours=retention_hours)
    try:
        moto_adapter.attach(warehouse)
    except Exception:
        warehouse.close()
        raise
    install_sdk_service_names()
    return warehouse


def uninstall() -> None:
    """Close the latest installed Warehouse and go back to the previous one, or to moto's own
    redshift-data when none is left (idempotent)."""
    warehouse = moto_adapter.detach()
    if moto_adapter.installed() is None:
        uninstall_sdk_service_names()
    if warehouse is not None:
        warehouse.close()


def installed() -> Warehouse | None:
    """The Warehouse moto currently uses, if any."""
    return moto_adapter.installed()
