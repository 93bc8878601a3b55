"""What ``airflow providers list`` and the connection form know about step-patterns.

Airflow finds this through the ``apache_airflow_provider`` entry point of the ``step-patterns``
distribution (pyproject.toml) and validates it against its ``provider_info.schema.json``.
Kept free of Airflow imports: Airflow calls it while it discovers providers.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "step-patterns"

# The ``pipedrive`` connection form: the company domain in Host, the API token in Password.
PIPEDRIVE_UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "Company domain", "password": "API token"},
    "placeholders": {
        "host": "mycompany (for https://mycompany.pipedrive.com) or a full URL",
        "password": "Pipedrive API token (Settings > Personal preferences > API)",
    },
}


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a plugins folder, not installed
        return "0+unknown"


def get_provider_info() -> dict:
    return {
        "package-name": DISTRIBUTION,
        "name": "Step Patterns",
        "description": "Step Functions patterns for Airflow: Redshift to Pipedrive at the rate limit, "
        "long Redshift statements in a wait loop.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": "Pipedrive",
                "external-doc-url": "https://developers.pipedrive.com/docs/api/v1",
                "tags": ["service"],
            },
        ],
        "operators": [
            {"integration-name": "Pipedrive", "python-modules": ["step_patterns.operators.chunked_iterator"]},
        ],
        "hooks": [
            {"integration-name": "Pipedrive", "python-modules": ["step_patterns.connections"]},
        ],
        "connection-types": [
            {
                "connection-type": "pipedrive",
                "hook-class-name": "step_patterns.connections.PipedriveHook",
                "hook-name": "Pipedrive",
                "ui-field-behaviour": PIPEDRIVE_UI_FIELD_BEHAVIOUR,
            },
        ],
        # The operators show the amazon provider's Step Functions links (machine, execution).
        "extra-links": [
            "airflow.providers.amazon.aws.links.step_function.StateMachineDetailsLink",
            "airflow.providers.amazon.aws.links.step_function.StateMachineExecutionsDetailsLink",
        ],
    }
