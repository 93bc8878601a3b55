"""Plug the Warehouse into moto's ``redshift-data`` service (server and in-process mocks).

moto routes a request to ``RedshiftDataAPIServiceResponse.<action>`` and that method to
``RedshiftDataAPIServiceBackend`` (one backend per account and region). Both classes are
patched: the response methods read every Data API parameter (moto's read only a few) and
call the backend methods, which hand the work to the one installed Warehouse with the
backend's (account, region) as the statements' owner. A SecretArn is read first, from
moto's Secrets Manager of the same account and region (see db_secret.py). ``uninstall``
puts moto's own methods back.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.redshiftdata.models import RedshiftDataAPIServiceBackend
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse

from .db_secret import check_secret
from .warehouse import DataApiError, Warehouse

_warehouse: Warehouse | None = None
_stack: list[Warehouse] = []
_saved: dict[tuple[type, str], Any] = {}
_MISSING = object()


def _active() -> Warehouse:
    if _warehouse is None:
        raise JsonRESTError("InternalServerException", "step_patterns_sandbox.redshift_data is not installed")
    return _warehouse


def _call(method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except DataApiError as error:
        raise JsonRESTError(error.code, error.message) from None


# -- backend methods (self: RedshiftDataAPIServiceBackend) ------------------------------
def _owner(backend) -> tuple[str, str]:
    return (backend.account_id, backend.region_name)


def _read_secret(backend, request: dict) -> None:
    # Only Secrets Manager authentication reads a secret; DbUser and IAM identities do not.
    if request.get("secret_arn"):
        _call(check_secret, request["secret_arn"], *_owner(backend))


def backend_execute_statement(self, **request) -> dict:
    _read_secret(self, request)
    return _call(_active().execute_statement, owner=_owner(self), **request)


def backend_batch_execute_statement(self, **request) -> dict:
    _read_secret(self, request)
    return _call(_active().batch_execute_statement, owner=_owner(self), **request)


def backend_describe_statement(self, statement_id: str) -> dict:
    return _call(_active().describe_statement, statement_id, owner=_owner(self))


def backend_get_statement_result(self, statement_id: str, next_token: str | None = None) -> str:
    return _call(_active().get_statement_result, statement_id, next_token, owner=_owner(self))


def backend_cancel_statement(self, statement_id: str) -> dict:
    return _call(_active().cancel_statement, statement_id, owner=_owner(self))


def backend_list_statements(self, **filters) -> dict:
    return _call(_active().list_statements, owner=_owner(self), **filters)


# -- response methods (self: RedshiftDataAPIServiceResponse) ----------------------------
def _target(response) -> dict:
    p = response._get_param
    return {
        "database": p("Database"),
        "cluster_identifier": p("ClusterIdentifier"),
        "workgroup_name": p("WorkgroupName"),
        "secret_arn": p("SecretArn"),
        "db_user": p("DbUser"),
        "statement_name": p("StatementName"),
        "with_event": p("WithEvent"),
    }


def _ok(body: Any):
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, body if isinstance(body, str) else json.dumps(body)


def response_execute_statement(self):
    return _ok(
        self.redshiftdata_backend.execute_statement(
            sql=self._get_param("Sql"), parameters=self._get_param("Parameters"), **_target(self)
        )
    )


def response_batch_execute_statement(self):
    if self._get_param("Parameters"):
        raise JsonRESTError(
            "ValidationException", "The sandbox does not implement Parameters for BatchExecuteStatement."
        )
    return _ok(self.redshiftdata_backend.batch_execute_statement(sqls=self._get_param("Sqls"), **_target(self)))


def response_describe_statement(self):
    return _ok(self.redshiftdata_backend.describe_statement(self._get_param("Id")))


def response_get_statement_result(self):
    return _ok(self.redshiftdata_backend.get_statement_result(self._get_param("Id"), self._get_param("NextToken")))


def response_cancel_statement(self):
    return _ok(self.redshiftdata_backend.cancel_statement(self._get_param("Id")))


def response_list_statements(self):
    p = self._get_param
    return _ok(
        self.redshiftdata_backend.list_statements(
            status=p("Status"),
            statement_name=p("StatementName"),
            cluster_identifier=p("ClusterIdentifier"),
            workgroup_name=p("WorkgroupName"),
            database=p("Database"),
            max_results=p("MaxResults"),
            next_token=p("NextToken"),
        )
    )


_PATCHES: dict[type, dict[str, Any]] = {
    RedshiftDataAPIServiceBackend: {
        "execute_statement": backend_execute_statement,
        "batch_execute_statement": backend_batch_execute_statement,
        "describe_statement": backend_describe_statement,
        "get_statement_result": backend_get_statement_result,
        "cancel_statement": backend_cancel_statement,
        "list_statements": backend_list_statements,
    },
    RedshiftDataAPIServiceResponse: {
        "execute_statement": response_execute_statement,
        "batch_execute_statement": response_batch_execute_statement,
        "describe_statement": response_describe_statement,
        "get_statement_result": response_get_statement_result,
        "cancel_statement": response_cancel_statement,
        "list_statements": response_list_statements,
    },
}


def attach(warehouse: Warehouse) -> None:
    """Route moto's redshift-data to ``warehouse``.

    Attachments nest: a test that installs its own engine while the session's local cloud
    is up gets it until it detaches, and the cloud's engine answers again afterwards.
    """
    global _warehouse
    if not _stack:
        for cls, methods in _PATCHES.items():
            for name, function in methods.items():
                _saved[(cls, name)] = cls.__dict__.get(name, _MISSING)
                setattr(cls, name, function)
    _stack.append(warehouse)
    _warehouse = warehouse


def detach() -> Warehouse | None:
    """Stop routing to the latest attached warehouse; returns it (None if none was attached)."""
    global _warehouse
    if not _stack:
        return None
    warehouse = _stack.pop()
    _warehouse = _stack[-1] if _stack else None
    if not _stack:
        for (cls, name), original in _saved.items():
            if original is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _saved.clear()
    return warehouse


def installed() -> Warehouse | None:
    return _warehouse
