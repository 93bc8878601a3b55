"""The Data API sandbox's Warehouse used directly (no moto)."""

from __future__ import annotations

import json
import time

import pytest

from step_patterns_sandbox.redshift_data import DataApiError, Warehouse


@pytest.fixture
def warehouse():
    with Warehouse("duckdb:///:memory:", page_size=2, workers=2) as warehouse:
        yield warehouse


def submit(warehouse, sql, **kwargs):
    return warehouse.execute_statement(sql=sql, database="dev", cluster_identifier="c1", **kwargs)["Id"]


def test_statements_belong_to_their_account_and_region(warehouse):
    statement_id = submit(warehouse, "SELECT 1", owner=("111111111111", "eu-west-1"))
    assert warehouse.wait(statement_id, owner=("111111111111", "eu-west-1")) == "FINISHED"
    with pytest.raises(DataApiError) as caught:
        warehouse.describe_statement(statement_id, owner=("222222222222", "eu-west-1"))
    assert caught.value.code == "ResourceNotFoundException"


def test_results_expire_after_the_retention_period():
    with Warehouse("duckdb:///:memory:", retention_hours=0.5 / 3600) as warehouse:
        statement_id = submit(warehouse, "SELECT 1")
        assert warehouse.wait(statement_id) == "FINISHED"
        assert '"Records": [[{"longValue":1}]]' in warehouse.get_statement_result(statement_id)
        time.sleep(0.6)
        with pytest.raises(DataApiError, match="Query does not exist"):
            warehouse.get_statement_result(statement_id)


def test_a_foreign_next_token_is_rejected(warehouse):
    first = submit(warehouse, "SELECT * FROM range(5)")
    other = submit(warehouse, "SELECT * FROM range(5)")
    warehouse.wait(first), warehouse.wait(other)
    token = json.loads(warehouse.get_statement_result(first))["NextToken"]
    with pytest.raises(DataApiError, match="does not belong"):
        warehouse.get_statement_result(other, token)


def test_execute_binds_named_parameters_of_any_type(warehouse):
    warehouse.execute("CREATE TABLE t (id INTEGER, name VARCHAR)")
    warehouse.execute("INSERT INTO t VALUES (:id, :name)", {"id": 7, "name": "x:y"})
    assert warehouse.execute("SELECT name FROM t WHERE id = :id", {"id": 7}) == [("x:y",)]


def test_close_aborts_running_statements():
    warehouse = Warehouse("duckdb:///:memory:")
    statement_id = submit(warehouse, "SELECT sum(a.range * b.range) FROM range(200000000) a, range(100000) b")
    for _ in range(200):
        if warehouse.describe_statement(statement_id)["Status"] == "STARTED":
            break
        time.sleep(0.01)
    statement = warehouse._statements[statement_id]
    warehouse.close()
    assert statement.status == "ABORTED"


def test_bad_engine_urls_are_explained():
    with pytest.raises(ValueError, match="unsupported engine URL"):
        Warehouse("mysql://x")
    with pytest.raises(ValueError, match="absolute path"):
        Warehouse("duckdb://relative.duckdb")
