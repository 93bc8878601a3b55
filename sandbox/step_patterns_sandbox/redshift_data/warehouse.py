"""The Redshift Data API's behaviour on a real SQL engine, independent of moto.

Statements are queued on a thread pool and go SUBMITTED -> PICKED -> STARTED -> FINISHED
or FAILED (Error = the engine's message); CancelStatement interrupts the engine and the
statement ends ABORTED. Results are spooled to disk page by page (see spool.py) and kept
until the statement is older than ``retention_hours`` (24 h, as the Data API) or the
warehouse closes. Errors a caller must see are raised as ``DataApiError(code, message)``
with the Data API's error codes; the moto adapter turns them into HTTP errors.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .engine import Session, StatementError, open_engine
from .params import BoundSql, ParameterError, bind, parameters_by_name
from .spool import ResultSpool
from .statement import ABORTED, ALL_STATUSES, FAILED, FINISHED, PICKED, STARTED, TERMINAL, Statement, Target

DEFAULT_OWNER = ("123456789012", "us-east-1")
_ID_PATTERN = re.compile(r"^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$")
_NO_RESULT = "Query does not have result. Please check query status with DescribeStatement."
_CANCEL_WAIT_SECONDS = 10.0


class DataApiError(Exception):
    """An error the Data API returns to the caller (code: ValidationException, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _validation(message: str) -> DataApiError:
    return DataApiError("ValidationException", message)


def _check_target(
    database: str | None,
    cluster_identifier: str | None,
    workgroup_name: str | None,
    secret_arn: str | None,
    db_user: str | None,
) -> Target:
    if cluster_identifier and workgroup_name:
        raise _validation("ClusterIdentifier and WorkgroupName are mutually exclusive: give exactly one.")
    if not cluster_identifier and not workgroup_name:
        raise _validation("Either ClusterIdentifier (provisioned) or WorkgroupName (serverless) is required.")
    if not database:
        raise _validation("Database is required.")
    if secret_arn and db_user:
        raise _validation("SecretArn and DbUser are mutually exclusive: authenticate with one of them.")
    return Target(database, cluster_identifier or None, workgroup_name or None, secret_arn or None, db_user or None)


class Warehouse:
    """A Data API service over one engine (DuckDB file/memory or PostgreSQL URL)."""

    def __init__(
        self,
        engine_url: str,
        *,
        page_size: int = 1000,
        workers: int = 4,
        retention_hours: float = 24.0,
        spool_dir: str | None = None,
    ):
        if page_size < 1 or workers < 1:
            raise ValueError("page_size and workers must be >= 1")
        self.engine_url = engine_url
        self.page_size = page_size
        self.retention_seconds = retention_hours * 3600
        self._engine = open_engine(engine_url)
        self._spool_dir = spool_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redshift-data")
        self._statements: dict[str, Statement] = {}
        self._lock = threading.Lock()
        self._query_ids = itertools.count(1000)
        self._closed = False

    # -- direct access (tests, seeding) ------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]:
        """Run ``sql`` now on the same engine; ``:name`` params from a dict; rows or []."""
        return self._engine.execute(sql, params)

    # -- ExecuteStatement / BatchExecuteStatement --------------------------------------
    def execute_statement(
        self,
        *,
        sql: str | None,
        database: str | None,
        owner: tuple[str, str] = DEFAULT_OWNER,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        secret_arn: str | None = None,
        db_user: str | None = None,
        parameters: list[dict] | None = None,
        statement_name: str | None = None,
        with_event: bool | None = None,  # accepted; no EventBridge event is sent
    ) -> dict[str, Any]:
        if not sql or not isinstance(sql, str):
            raise _validation("Sql is required.")
        target = _check_target(database, cluster_identifier, workgroup_name, secret_arn, db_user)
        try:
            bound = bind(sql, parameters_by_name(parameters), self._engine.placeholder_style)
        except ParameterError as error:
            raise _validation(str(error)) from None
        statement = self._new_statement(owner, sql, target, parameters, statement_name, is_batch=False)
        self._pool.submit(self._run, statement, [(statement, bound)], False)
        return self._submitted(statement)

    def batch_execute_statement(
        self,
        *,
        sqls: list[str] | None,
        database: str | None,
        owner: tuple[str, str] = DEFAULT_OWNER,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        secret_arn: str | None = None,
        db_user: str | None = None,
        statement_name: str | None = None,
        with_event: bool | None = None,
    ) -> dict[str, Any]:
        """Run ``sqls`` in order in one transaction; each is a sub-statement ``<id>:<n>``."""
        if not sqls or not all(isinstance(s, str) and s for s in sqls):
            raise _validation("Sqls must be a non-empty list of SQL statements.")
        if len(sqls) > 40:
            raise _validation("Sqls can hold at most 40 statements.")
        target = _check_target(database, cluster_identifier, workgroup_name, secret_arn, db_user)
        parent = self._new_statement(owner, "; ".join(sqls), target, None, statement_name, is_batch=True)
        work = []
        for index, sql in enumerate(sqls, start=1):
            sub = Statement(f"{parent.id}:{index}", owner, sql, target, redshift_query_id=next(self._query_ids))
            parent.sub_statements.append(sub)
            work.append((sub, BoundSql(sql, [])))
        self._pool.submit(self._run, parent, work, True)
        return self._submitted(parent)

    def _new_statement(self, owner, sql, target, parameters, statement_name, *, is_batch) -> Statement:
        if self._closed:
            raise DataApiError("InternalServerException", "The warehouse is closed.")
        self._purge_expired()
        statement = Statement(
            str(uuid.uuid4()),
            tuple(owner),
            sql,
            target,
            parameters=parameters or None,
            statement_name=statement_name,
            is_batch=is_batch,
            redshift_query_id=next(self._query_ids),
        )
        with self._lock:
            self._statements[statement.id] = statement
        return statement

    @staticmethod
    def _submitted(statement: Statement) -> dict[str, Any]:
        t = statement.target
        data = {
            "Id": statement.id,
            "CreatedAt": statement.created_at,
            "Database": t.database,
            "ClusterIdentifier": t.cluster_identifier,
            "WorkgroupName": t.workgroup_name,
            "SecretArn": t.secret_arn,
            "DbUser": t.db_user,
        }
        return {k: v for k, v in data.items() if v is not None}

    # -- execution (pool threads) ------------------------------------------------------
    def _run(self, parent: Statement, work: list[tuple[Statement, BoundSql]], transaction: bool) -> None:
        session: Session | None = None
        try:
            with parent.lock:
                if parent.status == ABORTED:  # cancelled while queued
                    return
                parent.set_status(PICKED)
            for sub, _ in work:
                if sub is not parent:
                    sub.set_status(PICKED)
            try:
                session = self._engine.session()
            except Exception as error:  # cannot reach the engine: the statement fails, visibly
                self._end_all(parent, work, FAILED, f"ERROR: cannot connect to the database: {error}")
                return
            with parent.lock:
                parent.redshift_pid = session.pid
                if parent.cancel_requested:
                    return
                parent.session = session
                parent.set_status(STARTED)
            if transaction:
                session.begin()
            for index, (statement, bound) in enumerate(work):
                if not self._run_one(parent, statement, bound, session):
                    if transaction:
                        session.rollback()
                    status = ABORTED if parent.cancel_requested else FAILED
                    for later, _ in work[index + 1 :]:
                        self._end(later, ABORTED, "Not run: an earlier statement of the batch did not finish.")
                    if statement is not parent:
                        self._end(parent, status, statement.error)
                    return
            if transaction:
                session.commit()
            with parent.lock:
                if parent is not work[0][0]:
                    parent.has_result_set = any(s.has_result_set for s, _ in work)
                    parent.result_rows = sum(max(s.result_rows, 0) for s, _ in work)
                    parent.result_size = sum(max(s.result_size, 0) for s, _ in work)
                parent.set_status(FINISHED)
        except Exception as error:  # a bug or an engine failure outside a statement
            self._end_all(parent, work, ABORTED if parent.cancel_requested else FAILED, f"ERROR: {error}")
        finally:
            with parent.lock:
                parent.session = None
                if parent.status not in TERMINAL:  # cancelled between PICKED and STARTED
                    parent.error = "Query was cancelled before it started."
                    parent.set_status(ABORTED)
            if session is not None:
                session.close()
            parent.done.set()

    def _run_one(self, parent: Statement, statement: Statement, bound: BoundSql, session: Session) -> bool:
        """Run one statement on ``session``; record its outcome; True when it FINISHED."""
        if statement is not parent:
            statement.redshift_pid = session.pid
            statement.set_status(STARTED)
        spool: ResultSpool | None = None

        def on_columns(columns):
            nonlocal spool
            spool = ResultSpool(columns, self.page_size, self._spool_dir)

        def on_rows(rows):
            spool.add_rows(rows)

        try:
            outcome = session.run(bound.sql, bound.values, self.page_size, on_columns, on_rows)
        except Exception as error:
            if spool is not None:
                spool.close()
            message = str(error) if isinstance(error, StatementError) else f"ERROR: {error}"
            self._end(statement, ABORTED if parent.cancel_requested else FAILED, message)
            return False
        with statement.lock:
            if spool is not None:
                spool.finish()
                statement.spool = spool
                statement.has_result_set = True
                statement.result_rows = spool.total_rows
                statement.result_size = spool.size_bytes
            else:
                statement.result_rows = outcome.affected_rows if outcome.affected_rows >= 0 else 0
                statement.result_size = 0
            if statement is not parent:
                statement.set_status(FINISHED)
        return True

    @staticmethod
    def _end(statement: Statement, status: str, error: str | None) -> None:
        with statement.lock:
            statement.error = error
            statement.set_status(status)

    def _end_all(self, parent, work, status, error) -> None:
        for statement, _ in work:
            if statement is not parent and statement.status not in TERMINAL:
                self._end(statement, status, error)
        self._end(parent, status, error)

    # -- DescribeStatement / GetStatementResult / CancelStatement / ListStatements -----
    def _find(self, statement_id: Any, owner: tuple[str, str]) -> Statement:
        if not isinstance(statement_id, str) or not _ID_PATTERN.match(statement_id):
            raise _validation("id must satisfy regex pattern: ^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d+)?$")
        parent_id, _, sub_index = statement_id.partition(":")
        with self._lock:
            statement = self._statements.get(parent_id)
        if statement is None or statement.owner != tuple(owner) or self._expired(statement):
            raise DataApiError("ResourceNotFoundException", "Query does not exist.")
        if sub_index:
            index = int(sub_index)
            if not statement.is_batch or not 1 <= index <= len(statement.sub_statements):
                raise DataApiError("ResourceNotFoundException", "Query does not exist.")
            return statement.sub_statements[index - 1]
        return statement

    def describe_statement(self, statement_id: str, *, owner: tuple[str, str] = DEFAULT_OWNER) -> dict[str, Any]:
        statement = self._find(statement_id, owner)
        with statement.lock:
            return statement.describe()

    def get_statement_result(
        self, statement_id: str, next_token: str | None = None, *, owner: tuple[str, str] = DEFAULT_OWNER
    ) -> str:
        """The GetStatementResult answer as JSON text (pages are served as stored)."""
        statement = self._find(statement_id, owner)
        with statement.lock:
            spool, status, is_batch = statement.spool, statement.status, statement.is_batch
        if is_batch:
            raise _validation(
                "A batch statement has no result of its own: get each result by its sub-statement id (<id>:<n>)."
            )
        if status != FINISHED or spool is None:
            raise _validation(_NO_RESULT)
        page = self._page_index(next_token, statement_id, spool.page_count)
        following = page + 1 < spool.page_count
        token = base64.urlsafe_b64encode(f"{statement_id}|{page + 1}".encode()).decode() if following else None
        head = {"ColumnMetadata": spool.column_metadata, "TotalNumRows": spool.total_rows}
        if token:
            head["NextToken"] = token
        return json.dumps(head)[:-1] + ', "Records": ' + spool.page(page) + "}"

    @staticmethod
    def _page_index(next_token: str | None, statement_id: str, page_count: int) -> int:
        if not next_token:
            return 0
        try:
            owner_id, _, index = base64.urlsafe_b64decode(next_token.encode()).decode().rpartition("|")
            page = int(index)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _validation(f"NextToken {next_token!r} is not valid.") from None
        if owner_id != statement_id or not 0 <= page < page_count:
            raise _validation(f"NextToken {next_token!r} does not belong to statement {statement_id}.")
        return page

    def cancel_statement(self, statement_id: str, *, owner: tuple[str, str] = DEFAULT_OWNER) -> dict[str, bool]:
        statement = self._find(statement_id, owner)
        with statement.lock:
            if statement.status in TERMINAL:
                raise _validation(
                    f"Could not cancel a query that is already in {statement.status} state with ID: {statement_id}"
                )
            statement.cancel_requested = True
            if statement.session is None and statement.status != STARTED:
                # Not on the engine yet: it will never run.
                statement.error = "Query was cancelled before it started."
                statement.set_status(ABORTED)
                for sub in statement.sub_statements:
                    sub.error = statement.error
                    sub.set_status(ABORTED)
                return {"Status": True}
        # Interrupt until the worker acknowledges: an interrupt sent just before the engine
        # began the statement would otherwise be lost.
        deadline = time.monotonic() + _CANCEL_WAIT_SECONDS
        while not statement.done.is_set() and time.monotonic() < deadline:
            with statement.lock:
                session = statement.session
            if session is not None:
                try:
                    session.interrupt()
                except Exception:
                    pass  # the statement may have just ended; its status says what happened
            statement.done.wait(0.2)
        with statement.lock:
            return {"Status": statement.status == ABORTED or not statement.done.is_set()}

    def list_statements(
        self,
        *,
        owner: tuple[str, str] = DEFAULT_OWNER,
        status: str | None = None,
        statement_name: str | None = None,
        cluster_identifier: str | None = None,
        workgroup_name: str | None = None,
        database: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        """Most recent first; StatementName is a prefix match, Status ALL (default) or one."""
        if status and status != "ALL" and status not in ALL_STATUSES:
            raise _validation(f"Status {status!r} is not one of {sorted(ALL_STATUSES | {'ALL'})}.")
        if cluster_identifier and workgroup_name:
            raise _validation("ClusterIdentifier and WorkgroupName are mutually exclusive.")
        limit = 100 if max_results is None else int(max_results)
        if not 0 <= limit <= 100:
            raise _validation("MaxResults must be between 0 and 100.")
        limit = limit or 100
        with self._lock:
            candidates = [s for s in self._statements.values() if s.owner == tuple(owner) and not self._expired(s)]
        chosen = []
        for s in sorted(candidates, key=lambda s: s.created_at, reverse=True):
            if status and status != "ALL" and s.status != status:
                continue
            if statement_name and not (s.statement_name or "").startswith(statement_name):
                continue
            if cluster_identifier and s.target.cluster_identifier != cluster_identifier:
                continue
            if workgroup_name and s.target.workgroup_name != workgroup_name:
                continue
            if database and s.target.database != database:
                continue
            chosen.append(s)
        start = 0
        if next_token:
            try:
                start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise _validation(f"NextToken {next_token!r} is not valid.") from None
        page = chosen[start : start + limit]
        answer: dict[str, Any] = {"Statements": []}
        for s in page:
            with s.lock:
                answer["Statements"].append(s.summary())
        if start + limit < len(chosen):
            answer["NextToken"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return answer

    # -- waiting, retention, shutdown --------------------------------------------------
    def wait(self, statement_id: str, timeout: float = 30.0, *, owner: tuple[str, str] = DEFAULT_OWNER) -> str:
        """Block until the statement ends (or ``timeout``); return its status."""
        statement = self._find(statement_id.partition(":")[0], owner)
        statement.done.wait(timeout)
        return statement.status

    def _expired(self, statement: Statement) -> bool:
        return time.time() - statement.created_at > self.retention_seconds

    def _purge_expired(self) -> None:
        with self._lock:
            expired = [s for s in self._statements.values() if self._expired(s) and s.done.is_set()]
            for s in expired:
                del self._statements[s.id]
        for s in expired:
            for owned in [s, *s.sub_statements]:
                if owned.spool is not None:
                    owned.spool.close()

    def close(self) -> None:
        """Cancel what runs, drop every result, close the engine. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            statements = list(self._statements.values())
        for s in statements:
            if s.status not in TERMINAL:
                try:
                    self.cancel_statement(s.id, owner=s.owner)
                except DataApiError:
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        for s in statements:
            for owned in [s, *s.sub_statements]:
                if owned.spool is not None:
                    owned.spool.close()
        with self._lock:
            self._statements.clear()
        self._engine.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
