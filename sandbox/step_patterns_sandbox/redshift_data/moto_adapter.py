"""Plug the Warehouse into moto's ``redshift-data`` service (server and in-process mocks).

moto routes a request to ``RedshiftDataAPIServiceResponse.<action>`` and that method to
``RedshiftDataAPIServiceBackend`` (one backend per account and region). Both classes are
patched: the response methods read every Data API parameter (moto's read only a few) and
call the backend methods, which hand the work to the one installed Warehouse with the
backend's (account, region) as the statements' owner. A SecretArn is read first, from
moto's Secrets Manager of the same account and region (see db_secret.py). ``uninstall``
puts moto's own methods back.

Every answer is checked against botocore's output shape for its operation before it is
sent (``answer``): a field botocore does not know, a null, a wrong type or a missing
required member is a sandbox bug and answers 500 ``InternalServerException`` naming it,
so a test fails loudly where a client would have silently read ``None``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import botocore.session
from botocore.validate import ParamValidator
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


class AnswerShapeError(JsonRESTError):
    code = 500  # InternalServerException is the Data API's 500


@cache
def _output_shape(operation: str):
    return botocore.session.get_session().get_service_model("redshift-data").operation_model(operation).output_shape


def check_answer(operation: str, answer: dict) -> None:
    """Raise AnswerShapeError unless ``answer`` (decoded JSON, as sent) fits botocore's output
    shape of ``operation``. botocore's ParamValidator is written for input shapes but walks
    any shape (structures, lists, unions, required members, types, length and range bounds),
    and output shapes use the same model, so it serves here; what it cannot tell is the wire
    format itself (a Timestamp may be epoch seconds or an ISO string, both of which botocore
    parses), and it takes ``true`` for an integer."""
    indices = None
    if isinstance(answer.get("Records"), list):
        kept = _distinct_records(answer["Records"])
        indices, answer = list(kept), {**answer, "Records": list(kept.values())}
    report = ParamValidator().validate(answer, _output_shape(operation))
    if report.has_errors():
        text = report.generate_report().replace(" in input", "")
        if indices is not None:  # name the records by their place in the page
            text = re.sub(r"Records\[(\d+)\]", lambda m: f"Records[{indices[int(m.group(1))]}]", text)
        raise AnswerShapeError(
            "InternalServerException",
            f"sandbox bug: the {operation} answer does not match botocore's output shape: {text}",
        )


def _distinct_records(records: list) -> dict[int, list]:
    """``{index: record}``, one record per distinct layout of keys and value types. Field's
    members carry no bounds in the model, so a record's validity depends on its layout only:
    validating each of a page's 1000 records costs ~55 ms, its few layouts ~10 ms."""
    distinct = {}
    for index, record in enumerate(records):
        try:
            layout = tuple([(*field, *map(type, field.values())) for field in record])
        except (AttributeError, TypeError):
            return dict(enumerate(records))  # not a list of Fields: let the validator say where
        distinct.setdefault(layout, index)
    return {index: records[index] for index in distinct.values()}


def answer(operation: str, body: Any):
    """The HTTP answer for ``operation``, checked against botocore's output shape."""
    text = body if isinstance(body, str) else json.dumps(body)
    check_answer(operation, json.loads(text))
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, text


def response_execute_statement(self):
    return answer("ExecuteStatement", 
        self.redshiftdata_backend.execute_statement(
            sql=self._get_param("Sql"), parameters=self._get_param("Parameters"), **_target(self)
        )
    )


def response_batch_execute_statement(self):
    if self._get_param("Parameters"):
        raise JsonRESTError(
            "ValidationException", "The sandbox does not implement Parameters for BatchExecuteStatement."
        )
    return answer("BatchExecuteStatement", self.redshiftdata_backend.batch_execute_statement(sqls=self._get_param("Sqls"), **_target(self)))


def response_describe_statement(self):
    return answer("DescribeStatement", self.redshiftdata_backend.describe_statement(self._get_param("Id")))


def response_get_statement_result(self):
    return answer("GetStatementResult", self.redshiftdata_backend.get_statement_result(self._get_param("Id"), self._get_param("NextToken")))


def response_cancel_statement(self):
    return answer("CancelStatement", self.redshiftdata_backend.cancel_statement(self._get_param("Id")))


def response_list_statements(self):
    p = self._get_param
    return answer(
        "ListStatements",
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
