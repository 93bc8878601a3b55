"""Step Functions' ``aws-sdk:<service>:<action>`` names -> botocore's service names.

Step Functions writes SDK service names without hyphens (``redshiftdata``) where botocore
has ``redshift-data``; moto's interpreter hands the name to ``boto3.client`` as written
and fails with ``Unknown service: 'redshiftdata'``. moto already keeps a translation table
for ``sfn``/``states`` -> ``stepfunctions`` that every task service (and so every
``boto_client_for`` call of the aws-sdk integration) goes through: we extend that one
table instead of wrapping ``boto_client_for`` in each module that imported it by name.
We also give ``redshiftdata`` its error prefix as AWS spells it (``RedshiftData.<Error>``;
moto would say ``redshiftdata.<Error>``).
"""

from __future__ import annotations

import botocore.session
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as _service_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as _aws_sdk_module,
)

_OVERRIDES: dict[str, str] = _service_module.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
_ERROR_NAMES: dict[str, str] = _aws_sdk_module._SERVICE_ERROR_NAMES
_ERROR_PREFIXES = {"redshiftdata": "RedshiftData"}
_added: dict[dict, list[str]] = {}


def sdk_service_names() -> dict[str, str]:
    """``{hyphenless name: botocore name}`` for every botocore service with a hyphen."""
    services = botocore.session.get_session().get_available_services()
    known = set(services)
    return {s.replace("-", ""): s for s in services if "-" in s and s.replace("-", "") not in known}


def install_sdk_service_names() -> None:
    """Teach moto's Step Functions interpreter the SDK service names (idempotent)."""
    for table, entries in ((_OVERRIDES, sdk_service_names()), (_ERROR_NAMES, _ERROR_PREFIXES)):
        added = _added.setdefault(id(table), [])
        for name, value in entries.items():
            if name not in table:
                table[name] = value
                added.append(name)


def uninstall_sdk_service_names() -> None:
    for table in (_OVERRIDES, _ERROR_NAMES):
        for name in _added.pop(id(table), []):
            table.pop(name, None)
