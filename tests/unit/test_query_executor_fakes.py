"""Fakes of the S3 and Redshift Data API clients for the query-executor and report unit tests.

(Named ``test_*`` so it sits with the tests that import it; its own tests check that the
fakes behave like the services where our code depends on it.)
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from botocore.response import StreamingBody


def _client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class _Paginator:
    def __init__(self, s3: "FakeS3"):
        self._s3 = s3

    def paginate(self, Bucket: str, Prefix: str = ""):
        keys = sorted(k for (b, k) in self._s3.objects if b == Bucket and k.startswith(Prefix))
        self._s3.calls.append(("list", Prefix))
        if not keys:
            yield {"KeyCount": 0}
        for start in range(0, len(keys), self._s3.page_size):
            yield {"Contents": [{"Key": k, "Size": len(self._s3.objects[(Bucket, k)])}
                                for k in keys[start:start + self._s3.page_size]]}


@dataclass
class FakeS3:
    """In-memory S3 that records the order of writes; lists ``page_size`` keys a page."""

    page_size: int = 2
    objects: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def put_object(self, Bucket, Key, Body, **_):
        data = Body.read() if hasattr(Body, "read") else bytes(Body)
        self.objects[(Bucket, Key)] = data
        self.calls.append(("put", Key))
        return {}

    def get_object(self, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise _client_error("NoSuchKey", "GetObject", "The specified key does not exist.")
        data = self.objects[(Bucket, Key)]
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}

    def delete_object(self, Bucket, Key):
        self.objects.pop((Bucket, Key), None)
        self.calls.append(("delete", Key))
        return {}

    def delete_objects(self, Bucket, Delete):
        for item in Delete["Objects"]:
            self.delete_object(Bucket, item["Key"])
        return {}

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return _Paginator(self)

    # helpers for assertions
    def text(self, bucket, key) -> str:
        return self.objects[(bucket, key)].decode()

    def puts(self) -> list[str]:
        return [key for op, key in self.calls if op == "put"]


def fields_of(*values):
    """Data API typed Fields for Python values (as Redshift serves them)."""
    out = []
    for v in values:
        if v is None:
            out.append({"isNull": True})
        elif isinstance(v, bool):
            out.append({"booleanValue": v})
        elif isinstance(v, int):
            out.append({"longValue": v})
        elif isinstance(v, float):
            out.append({"doubleValue": v})
        else:
            out.append({"stringValue": str(v)})
    return out


def column(name: str, type_name: str) -> dict:
    return {"name": name, "label": name, "typeName": type_name}


@dataclass
class FakeRedshiftData:
    """Statements that pass through ``statuses`` then serve ``rows`` in pages of ``page_size``."""

    columns: list
    rows: list
    statuses: list = field(default_factory=lambda: ["STARTED", "FINISHED"])
    error: str | None = None
    page_size: int = 3
    has_result_set: bool = True
    executed: list = field(default_factory=list)
    cancelled: list = field(default_factory=list)
    pages_served: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def execute_statement(self, **kwargs):
        self.executed.append(kwargs)
        self._status = iter(self.statuses)
        return {"Id": f"stmt-{next(self._ids)}"}

    def describe_statement(self, Id):
        status = next(self._status, self.statuses[-1])
        answer = {"Id": Id, "Status": status, "HasResultSet": self.has_result_set, "ResultRows": len(self.rows)}
        if status in ("FAILED", "ABORTED") and self.error:
            answer["Error"] = self.error
        return answer

    def cancel_statement(self, Id):
        self.cancelled.append(Id)
        return {"Status": True}

    def get_statement_result(self, Id, NextToken=None):
        page = int(NextToken or 0)
        start = page * self.page_size
        self.pages_served += 1
        answer = {"ColumnMetadata": self.columns, "Records": [fields_of(*r) for r in self.rows[start:start + self.page_size]],
                  "TotalNumRows": len(self.rows)}
        if start + self.page_size < len(self.rows):
            answer["NextToken"] = str(page + 1)
        return answer


class FakeContext:
    """LambdaContext whose remaining time drops by ``step_ms`` each time it is asked."""

    def __init__(self, remaining_ms: int = 900_000, step_ms: int = 0):
        self.remaining = remaining_ms
        self.step_ms = step_ms

    def get_remaining_time_in_millis(self) -> int:
        self.remaining = max(0, self.remaining - self.step_ms)
        return self.remaining


def test_fake_s3_lists_in_pages_in_key_order_like_s3():
    s3 = FakeS3(page_size=2)
    for key in ("p/b", "p/a", "p/c", "q/x"):
        s3.put_object(Bucket="b", Key=key, Body=b"")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="b", Prefix="p/"))
    assert [[c["Key"] for c in p["Contents"]] for p in pages] == [["p/a", "p/b"], ["p/c"]]


def test_fake_s3_missing_key_is_the_client_error_s3_raises():
    try:
        FakeS3().get_object(Bucket="b", Key="nope")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchKey"
    else:
        raise AssertionError("expected NoSuchKey")
