"""PostgreSQL (psycopg 3) behind the Data API.

Each statement gets its own connection (autocommit, like the Data API), so its backend
pid is a real ``RedshiftPid`` and ``cancel_safe()`` interrupts only that statement.
Queries (SELECT/WITH/VALUES/TABLE) run through a server-side cursor inside a transaction
and are fetched batch by batch: client memory stays bounded by the batch size. Other
statements run plainly; if one returns rows (``INSERT ... RETURNING``, ``SHOW``,
``EXPLAIN``) those rows are held by libpq in client memory before being paged.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping, Sequence

import psycopg
from psycopg import errors as pg_errors

from .engine import ColumnsCallback, Outcome, RowsCallback, StatementError
from .fields import Column
from .params import bind

_QUERY_START = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*(select|with|values|table)\b", re.I | re.S)
_COUNTED = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")


def _message(error: psycopg.Error) -> str:
    diag = error.diag
    primary = diag.message_primary or str(error).split("\n")[0]
    return f"ERROR: {primary}" + (f"\n  Detail: {diag.message_detail}" if diag.message_detail else "")


class PostgresSession:
    def __init__(self, url: str):
        self._conn = psycopg.connect(url, autocommit=True)
        self.pid = self._conn.info.backend_pid
        self._explicit_tx = False

    def _columns(self, description) -> list[Column]:
        types = self._conn.adapters.types
        columns = []
        for d in description:
            info = types.get(d.type_code)
            name = info.name if info is not None else "varchar"
            if name in ("json", "jsonb") or (info is not None and d.type_code == getattr(info, "array_oid", None)):
                name = "super"  # JSON and arrays come back as JSON text, as Redshift serves SUPER
            columns.append(Column(d.name, name, d.precision, d.scale))
        return columns

    def _page(self, cursor, batch_size: int, on_columns: ColumnsCallback, on_rows: RowsCallback) -> Outcome:
        columns = self._columns(cursor.description)
        on_columns(columns)
        while rows := cursor.fetchmany(batch_size):
            on_rows(rows)
        return Outcome(columns)

    def run(
        self, sql: str, values: Sequence[object], batch_size: int, on_columns: ColumnsCallback, on_rows: RowsCallback
    ) -> Outcome:
        params = list(values) or None
        try:
            if _QUERY_START.match(sql):
                try:
                    with self._conn.transaction():
                        with self._conn.cursor(name=f"rsd_{uuid.uuid4().hex}") as cursor:
                            cursor.itersize = batch_size
                            cursor.execute(sql, params)
                            return self._page(cursor, batch_size, on_columns, on_rows)
                except pg_errors.FeatureNotSupported as error:
                    # DECLARE refuses data-modifying WITH; nothing ran, run it plainly below.
                    if "DECLARE" not in str(error):
                        raise
            with self._conn.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.description is not None:
                    return self._page(cursor, batch_size, on_columns, on_rows)
                status = (cursor.statusmessage or "").split(" ")[0]
                return Outcome(None, cursor.rowcount if status in _COUNTED else -1)
        except psycopg.Error as error:
            raise StatementError(_message(error)) from error

    def begin(self) -> None:
        self._conn.execute("BEGIN")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    def interrupt(self) -> None:
        self._conn.cancel_safe(timeout=5)

    def close(self) -> None:
        self._conn.close()


class PostgresEngine:
    placeholder_style = "pyformat"

    def __init__(self, url: str):
        self.url = url
        # Fail fast on a bad URL or an unreachable server, not at the first statement.
        self._admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
        self._lock = threading.Lock()

    def session(self) -> PostgresSession:
        return PostgresSession(self.url)

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]:
        bound = bind(sql, params, self.placeholder_style)
        with self._lock:
            with self._admin.cursor() as cursor:
                cursor.execute(bound.sql, bound.values or None)
                return cursor.fetchall() if cursor.description is not None else []

    def close(self) -> None:
        self._admin.close()
