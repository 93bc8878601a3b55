"""DuckDB (embedded) behind the Data API.

One parent connection per database; each statement runs on its own ``cursor()`` (a
DuckDB connection sharing the same database), so ``interrupt()`` stops only that
statement. DuckDB streams query results: rows are pulled batch by batch while the query
runs, so memory stays bounded by the batch size whatever the result size.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence

import duckdb

from .engine import ColumnsCallback, Outcome, RowsCallback, StatementError
from .fields import Column
from .params import bind

# DuckDB type id -> Redshift type name.
_TYPE_NAMES = {
    "boolean": "bool",
    "tinyint": "int2",
    "utinyint": "int2",
    "smallint": "int2",
    "usmallint": "int4",
    "integer": "int4",
    "uinteger": "int8",
    "bigint": "int8",
    "ubigint": "numeric",
    "hugeint": "numeric",
    "uhugeint": "numeric",
    "varint": "numeric",
    "bignum": "numeric",
    "decimal": "numeric",
    "float": "float4",
    "double": "float8",
    "varchar": "varchar",
    "date": "date",
    "time": "time",
    "time with time zone": "timetz",
    "timestamp": "timestamp",
    "timestamp_s": "timestamp",
    "timestamp_ms": "timestamp",
    "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamptz",
    "blob": "varbyte",
    "interval": "interval",
    "uuid": "varchar",
    "enum": "varchar",
}
_COMMANDS_WITH_COUNTS = {"INSERT", "UPDATE", "DELETE", "COPY", "MERGE_INTO"}
_pids = itertools.count(10_000)


def _column(name: str, type_code) -> Column:
    type_id = getattr(type_code, "id", str(type_code).lower())
    if type_id == "decimal":
        children = dict(type_code.children)
        return Column(name, "numeric", children.get("precision"), children.get("scale"))
    # LIST/STRUCT/MAP/ARRAY/JSON are served like Redshift SUPER: JSON text.
    return Column(name, _TYPE_NAMES.get(type_id, "super" if type_id in ("list", "struct", "map", "array", "union") else "varchar"))


def _is_command_count(description) -> bool:
    return len(description) == 1 and description[0][0] == "Count" and str(description[0][1]) == "BIGINT"


def _last_statement_type(sql: str) -> str:
    try:
        return duckdb.extract_statements(sql)[-1].type.name
    except Exception:  # unparsable: the engine already reported the real error
        return "SELECT"


def _message(error: Exception) -> str:
    # DuckDB's text is "Kind Error: what\nhint\n\nLINE 1: ...": keep what and hint, drop the echo.
    return "ERROR: " + str(error).split("\n\n")[0].strip()


class DuckDBSession:
    def __init__(self, parent: duckdb.DuckDBPyConnection):
        self._cursor = parent.cursor()
        self.pid = next(_pids)

    def run(
        self, sql: str, values: Sequence[object], batch_size: int, on_columns: ColumnsCallback, on_rows: RowsCallback
    ) -> Outcome:
        try:
            self._cursor.execute(sql, list(values) or None)
            description = self._cursor.description
            if description is None:
                return Outcome(None, -1)
            statement_type = _last_statement_type(sql)
            if statement_type != "SELECT" and _is_command_count(description):
                row = self._cursor.fetchone()
                counted = statement_type in _COMMANDS_WITH_COUNTS and row is not None
                return Outcome(None, int(row[0]) if counted else -1)
            columns = [_column(d[0], d[1]) for d in description]
            on_columns(columns)
            while rows := self._cursor.fetchmany(batch_size):
                on_rows(rows)
            return Outcome(columns)
        except duckdb.Error as error:
            raise StatementError(_message(error)) from error

    def begin(self) -> None:
        self._cursor.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self._cursor.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self._cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass  # nothing to roll back (DuckDB already aborted the transaction)

    def interrupt(self) -> None:
        self._cursor.interrupt()

    def close(self) -> None:
        self._cursor.close()


class DuckDBEngine:
    placeholder_style = "dollar"

    def __init__(self, url: str):
        self.url = url
        path = url[len("duckdb://") :]
        if path == "/:memory:" or path == ":memory:":
            path = ":memory:"
        elif not path.startswith("/"):
            raise ValueError(f"DuckDB URL needs an absolute path (duckdb:///abs/path.duckdb): {url!r}")
        self._parent = duckdb.connect(path)
        self._lock = threading.Lock()

    def session(self) -> DuckDBSession:
        with self._lock:
            return DuckDBSession(self._parent)

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]:
        bound = bind(sql, params, self.placeholder_style)
        with self._lock:
            cursor = self._parent.cursor()
        try:
            cursor.execute(bound.sql, bound.values or None)
            if cursor.description is None or (
                _last_statement_type(sql) != "SELECT" and _is_command_count(cursor.description)
            ):
                return []
            return cursor.fetchall()
        finally:
            cursor.close()

    def close(self) -> None:
        self._parent.close()
