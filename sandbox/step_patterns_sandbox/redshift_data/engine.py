"""What the warehouse needs from a SQL engine, and the URL -> engine factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .fields import Column

#: Called once with the columns of a result set, then with each batch of rows.
ColumnsCallback = Callable[[list[Column]], None]
RowsCallback = Callable[[Sequence[Sequence[Any]]], None]


@dataclass(frozen=True)
class Outcome:
    """How a statement ended: a result set (columns) or a command (affected rows, -1 unknown)."""

    columns: list[Column] | None
    affected_rows: int = -1


class Session(Protocol):
    """One engine connection running one Data API statement (or one batch) at a time."""

    pid: int

    def run(
        self, sql: str, values: Sequence[object], batch_size: int, on_columns: ColumnsCallback, on_rows: RowsCallback
    ) -> Outcome: ...

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def interrupt(self) -> None:
        """Stop the running statement from another thread (it then raises in ``run``)."""

    def close(self) -> None: ...


class Engine(Protocol):
    url: str
    placeholder_style: str  # see params.bind

    def session(self) -> Session: ...

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]: ...

    def close(self) -> None: ...


class StatementError(Exception):
    """The engine rejected a statement; ``str(err)`` is the message Redshift would show."""


def open_engine(url: str) -> Engine:
    """``duckdb:///abs/path.duckdb``, ``duckdb:///:memory:`` or ``postgresql://user@host:port/db``."""
    if url.startswith("duckdb://"):
        from .duckdb_engine import DuckDBEngine

        return DuckDBEngine(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres_engine import PostgresEngine

        return PostgresEngine(url)
    raise ValueError(f"unsupported engine URL {url!r}: use duckdb:///path, duckdb:///:memory: or postgresql://...")
