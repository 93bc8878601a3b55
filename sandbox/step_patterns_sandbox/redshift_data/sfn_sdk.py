"""moto's Step Functions ``aws-sdk:<service>:<action>`` integration, made to behave like AWS.

1. Service names. 
Step Functions writes SDK service names without hyphens (``redshiftdata``) where botocore
has ``redshift-data``; moto's interpreter hands the name to ``boto3.client`` as written
and fails with ``Unknown service: 'redshiftdata'``. moto already keeps a translation table
for ``sfn``/``states`` -> ``stepfunctions`` that every task service (and so every
``boto_client_for`` call of the aws-sdk integration) goes through: we extend that one
table instead of wrapping ``boto_client_for`` in each module that imported it by name.
We also give ``redshiftdata`` its error prefix as AWS spells it (``RedshiftData.<Error>``;
moto would say ``redshiftdata.<Error>``).

2. Timestamps. botocore parses response timestamps (``CreatedAt``...) into ``datetime``
objects that moto then cannot serialise into the execution's output (DescribeExecution
fails with "Object of type datetime is not JSON serializable"). The integration's client
gets an ``after-call`` hook turning them into ISO-8601 strings, as Step Functions outputs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
_added: dict[int, list[str]] = {}
_original_client_for = _aws_sdk_module.boto_client_for


def _iso_timestamps(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _iso_timestamps(item)
    elif isinstance(value, list):
        value[:] = [_iso_timestamps(item) for item in value]
    return value


def _on_after_call(parsed: dict, **_: Any) -> None:
    _iso_timestamps(parsed)


def _client_for(*args: Any, **kwargs: Any):
    client = _original_client_for(*args, **kwargs)
    client.meta.events.register("after-call", _on_after_call)
    return client


def sdk_service_names() -> dict[str, str]:
    """``{hyphenless name: botocore name}`` for every botocore service with a hyphen."""
    services = botocore.session.get_session().get_available_services()
    known = set(services)
    return {s.replace("-", ""): s for s in services if "-" in s and s.replace("-", "") not in known}


def install_sdk_service_names() -> None:
    """Teach moto's aws-sdk integration the SDK service names and JSON timestamps (idempotent)."""
    _aws_sdk_module.boto_client_for = _client_for
    for table, entries in ((_OVERRIDES, sdk_service_names()), (_ERROR_NAMES, _ERROR_PREFIXES)):
        added = _added.setdefault(id(table), [])
        for name, value in entries.items():
            if name not in table:
                table[name] = value
                added.append(name)


def uninstall_sdk_service_names() -> None:
    _aws_sdk_module.boto_client_for = _original_client_for
    for table in (_OVERRIDES, _ERROR_NAMES):
        for name in _added.pop(id(table), []):
            table.pop(name, None)
