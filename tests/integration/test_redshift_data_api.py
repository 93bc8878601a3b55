"""The Redshift Data API on the sandbox, through a real boto3 client and moto's server.

Every behaviour test runs on DuckDB and, marked ``postgres``, on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from step_patterns_sandbox import redshift_data
from step_patterns_sandbox.redshift_data.pg_probe import require_postgres

PAGE_SIZE = 2
TERMINAL = {"FINISHED", "FAILED", "ABORTED"}
# Long enough to be seen STARTED and to need a real interrupt to stop early.
LONG_SQL = {
    "duckdb": "SELECT sum(a.range * b.range) FROM range(200000000) a, range(100000) b",
    "postgres": "SELECT pg_sleep(30)",
}


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(
    scope="module",
    params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request, tmp_path_factory):
    if request.param == "duckdb":
        url = f"duckdb://{tmp_path_factory.mktemp('warehouse') / 'warehouse.duckdb'}"
    else:
        url = require_postgres()
    warehouse = redshift_data.install(url, page_size=PAGE_SIZE, workers=4)
    yield request.param, warehouse
    redshift_data.uninstall()


@pytest.fixture
def warehouse(engine):
    return engine[1]


@pytest.fixture
def engine_name(engine):
    return engine[0]


@pytest.fixture
def client(moto_endpoint, engine):
    return boto3.client(
        "redshift-data",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def table(warehouse):
    """A fresh table name; dropped afterwards (PostgreSQL outlives the test run)."""
    name = f"rsd_{uuid.uuid4().hex[:10]}"
    yield name
    warehouse.execute(f"DROP TABLE IF EXISTS {name}")


def run(client, sql, *, parameters=None, **target):
    request = {"Database": "dev", "Sql": sql, **(target or {"ClusterIdentifier": "sandbox"})}
    if parameters:
        request["Parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
    return client.execute_statement(**request)["Id"]


def wait(client, statement_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_statement(Id=statement_id)
        if described["Status"] in TERMINAL or time.monotonic() > deadline:
            return described
        time.sleep(0.02)


def wait_for_status(client, statement_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        described = client.describe_statement(Id=statement_id)
        seen.append(described["Status"])
        if described["Status"] == status:
            return described
        time.sleep(0.02)
    pytest.fail(f"statement never reached {status}; saw {seen[-5:]}")


def error_of(call):
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def all_pages(client, statement_id):
    pages, token = [], None
    while True:
        page = client.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return pages


def test_select_returns_typed_fields_page_by_page(client, table, warehouse):
    warehouse.execute(
        f"CREATE TABLE {table} (id INTEGER, big BIGINT, amount NUMERIC(10,2), ratio DOUBLE PRECISION,"
        " active BOOLEAN, name VARCHAR(40), born DATE, seen TIMESTAMP)"
    )
    insert = run(
        client,
        f"INSERT INTO {table} VALUES"
        " (1, 9000000000, 12.50, 0.25, TRUE, 'Ann', '2024-02-29', '2024-03-01 12:34:56'),"
        " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
        " (3, -1, 0.01, -1.5, FALSE, 'Zoë', '1999-12-31', '2000-01-01 00:00:00'),"
        " (4, 4, 4, 4, TRUE, 'D', '2024-01-04', '2024-01-04 04:04:04'),"
        " (5, 5, 5, 5, TRUE, 'E', '2024-01-05', '2024-01-05 05:05:05')",
    )
    assert wait(client, insert)["ResultRows"] == 5

    statement_id = run(client, f"SELECT * FROM {table} ORDER BY id")
    described = wait(client, statement_id)
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["HasResultSet"] is True
    assert described["ResultRows"] == 5
    assert described["ResultSize"] > 0
    assert described["Duration"] > 0

    pages = all_pages(client, statement_id)
    assert [len(p["Records"]) for p in pages] == [2, 2, 1]
    assert all(p["TotalNumRows"] == 5 for p in pages)
    meta = pages[0]["ColumnMetadata"]
    assert [c["name"] for c in meta] == ["id", "big", "amount", "ratio", "active", "name", "born", "seen"]
    assert [c["typeName"] for c in meta] == [
        "int4", "int8", "numeric", "float8", "bool", "varchar", "date", "timestamp"
    ]
    assert (meta[2]["precision"], meta[2]["scale"]) == (10, 2)
    records = [r for p in pages for r in p["Records"]]
    assert records[0] == [
        {"longValue": 1},
        {"longValue": 9000000000},
        {"stringValue": "12.50"},
        {"doubleValue": 0.25},
        {"booleanValue": True},
        {"stringValue": "Ann"},
        {"stringValue": "2024-02-29"},
        {"stringValue": "2024-03-01 12:34:56"},
    ]
    assert records[1] == [{"longValue": 2}] + [{"isNull": True}] * 7
    assert records[2][5] == {"stringValue": "Zoë"}
    assert [r[0]["longValue"] for r in records] == [1, 2, 3, 4, 5]


def test_empty_result_has_a_result_set_with_no_records(client, table, warehouse):
    warehouse.execute(f"CREATE TABLE {table} (id INTEGER)")
    statement_id = run(client, f"SELECT id FROM {table}")
    described = wait(client, statement_id)
    assert (described["Status"], described["HasResultSet"], described["ResultRows"]) == ("FINISHED", True, 0)
    result = client.get_statement_result(Id=statement_id)
    assert result["Records"] == [] and result["TotalNumRows"] == 0 and "NextToken" not in result
    assert result["ColumnMetadata"][0]["name"] == "id"


def test_dml_reports_affected_rows_and_has_no_result(client, table, warehouse):
    created = wait(client, run(client, f"CREATE TABLE {table} (id INTEGER, tag VARCHAR(10))"))
    assert (created["Status"], created["HasResultSet"]) == ("FINISHED", False)
    insert = wait(client, run(client, f"INSERT INTO {table} VALUES (1, 'a'), (2, 'a'), (3, 'b')"))
    update = wait(client, run(client, f"UPDATE {table} SET tag = 'c' WHERE tag = 'a'"))
    delete = wait(client, run(client, f"DELETE FROM {table} WHERE id = 3"))
    assert [d["ResultRows"] for d in (insert, update, delete)] == [3, 2, 1]
    assert not any(d["HasResultSet"] for d in (insert, update, delete))
    assert warehouse.execute(f"SELECT id, tag FROM {table} ORDER BY id") == [(1, "c"), (2, "c")]
    code, message = error_of(lambda: client.get_statement_result(Id=update["Id"]))
    assert code == "ValidationException" and "does not have result" in message


def test_failed_statement_carries_the_engine_message(client, engine_name):
    statement_id = run(client, "SELECT * FROM no_such_table_here")
    described = wait(client, statement_id)
    assert described["Status"] == "FAILED"
    assert "no_such_table_here" in described["Error"] and described["Error"].startswith("ERROR: ")
    assert described["ResultRows"] == -1
    code, _ = error_of(lambda: client.get_statement_result(Id=statement_id))
    assert code == "ValidationException"


def test_long_statement_is_visibly_started_then_cancel_aborts_it(client, engine_name):
    statement_id = run(client, LONG_SQL[engine_name])
    running = wait_for_status(client, statement_id, "STARTED")
    assert running["Duration"] == -1
    assert client.cancel_statement(Id=statement_id)["Status"] is True
    described = wait(client, statement_id, timeout=10)
    assert described["Status"] == "ABORTED"
    assert described["Error"]  # the engine's own interruption message
    code, message = error_of(lambda: client.cancel_statement(Id=statement_id))
    assert code == "ValidationException"
    assert message == f"Could not cancel a query that is already in ABORTED state with ID: {statement_id}"


def test_cancel_of_a_finished_statement_is_a_validation_error(client):
    statement_id = run(client, "SELECT 1")
    assert wait(client, statement_id)["Status"] == "FINISHED"
    code, message = error_of(lambda: client.cancel_statement(Id=statement_id))
    assert code == "ValidationException" and "already in FINISHED state" in message


def test_named_parameters_survive_casts_literals_and_comments(client, table, warehouse):
    warehouse.execute(f"CREATE TABLE {table} (id INTEGER, label VARCHAR(20), seen_at TIMESTAMP)")
    warehouse.execute(f"INSERT INTO {table} VALUES (1, 'a:b', '2024-01-01 10:00:00'), (2, 'c', '2024-06-01 10:00:00')")
    sql = (
        f"SELECT id, :id::int + 1 AS next_id, ':id' AS literal, label, seen_at::date AS day /* :nope */\n"
        f"FROM {table} -- where :nothing\n"
        f"WHERE id = :id AND label = :label AND seen_at > :since AND id <> :id::int + 100"
    )
    statement_id = run(client, sql, parameters={"id": "1", "label": "a:b", "since": "2023-12-31 23:59:59"})
    described = wait(client, statement_id)
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["QueryParameters"] == [
        {"name": "id", "value": "1"},
        {"name": "label", "value": "a:b"},
        {"name": "since", "value": "2023-12-31 23:59:59"},
    ]
    records = client.get_statement_result(Id=statement_id)["Records"]
    assert records == [[
        {"longValue": 1},
        {"longValue": 2},
        {"stringValue": ":id"},
        {"stringValue": "a:b"},
        {"stringValue": "2024-01-01"},
    ]]


def test_parameter_mismatches_are_rejected_at_submit(client):
    code, message = error_of(lambda: run(client, "SELECT :a, :b", parameters={"a": "1"}))
    assert code == "ValidationException" and ":b" in message
    code, message = error_of(lambda: run(client, "SELECT :a", parameters={"a": "1", "extra": "2"}))
    assert code == "ValidationException" and "extra" in message


def test_exactly_one_of_cluster_or_workgroup_and_a_database(client, moto_endpoint):
    code, message = error_of(
        lambda: client.execute_statement(Sql="SELECT 1", Database="dev", ClusterIdentifier="c1", WorkgroupName="wg1")
    )
    assert code == "ValidationException" and "mutually exclusive" in message
    code, message = error_of(lambda: client.execute_statement(Sql="SELECT 1", Database="dev"))
    assert code == "ValidationException" and "WorkgroupName" in message
    code, message = error_of(lambda: client.execute_statement(Sql="SELECT 1", WorkgroupName="wg1"))
    assert code == "ValidationException" and "Database" in message

    # SecretArn is read at the call: it must name a secret with a username and password
    # (tests/integration/test_redshift_data_secret.py).
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    secret_arn = secrets.create_secret(
        Name=f"wg1-{uuid.uuid4().hex[:8]}", SecretString='{"username": "u", "password": "p"}')["ARN"]
    serverless = client.execute_statement(Sql="SELECT 1", Database="dev", WorkgroupName="wg1", SecretArn=secret_arn)
    assert serverless["WorkgroupName"] == "wg1" and "ClusterIdentifier" not in serverless
    assert serverless["SecretArn"] == secret_arn and serverless["Database"] == "dev"
    described = wait(client, serverless["Id"])
    assert described["WorkgroupName"] == "wg1" and "ClusterIdentifier" not in described
    provisioned = client.execute_statement(Sql="SELECT 1", Database="dev", ClusterIdentifier="c1", DbUser="awsuser")
    assert provisioned["ClusterIdentifier"] == "c1" and provisioned["DbUser"] == "awsuser"


def test_unknown_and_malformed_ids(client):
    code, message = error_of(lambda: client.describe_statement(Id=str(uuid.uuid4())))
    assert (code, message) == ("ResourceNotFoundException", "Query does not exist.")
    code, _ = error_of(lambda: client.describe_statement(Id="not-an-id"))
    assert code == "ValidationException"


def test_list_statements_filters_by_name_prefix_and_status(client):
    prefix = f"list-{uuid.uuid4().hex[:6]}"
    ok = client.execute_statement(Sql="SELECT 1", Database="dev", ClusterIdentifier="c1", StatementName=f"{prefix}-ok")
    bad = client.execute_statement(Sql="SELEC 1", Database="dev", ClusterIdentifier="c1", StatementName=f"{prefix}-bad")
    wait(client, ok["Id"]), wait(client, bad["Id"])
    listed = client.list_statements(StatementName=prefix)["Statements"]
    assert [s["Id"] for s in listed] == [bad["Id"], ok["Id"]]  # most recent first
    failed = client.list_statements(StatementName=prefix, Status="FAILED")["Statements"]
    assert [(s["StatementName"], s["QueryString"]) for s in failed] == [(f"{prefix}-bad", "SELEC 1")]


def test_batch_runs_in_one_transaction_and_serves_each_result(client, table, warehouse):
    warehouse.execute(f"CREATE TABLE {table} (id INTEGER)")
    batch = client.batch_execute_statement(
        Database="dev",
        ClusterIdentifier="c1",
        Sqls=[f"INSERT INTO {table} VALUES (1), (2)", f"SELECT count(*) AS n FROM {table}"],
    )
    described = wait(client, batch["Id"])
    assert described["Status"] == "FINISHED", described.get("Error")
    assert [s["Status"] for s in described["SubStatements"]] == ["FINISHED", "FINISHED"]
    assert described["SubStatements"][0]["ResultRows"] == 2
    assert client.get_statement_result(Id=f"{batch['Id']}:2")["Records"] == [[{"longValue": 2}]]

    failing = client.batch_execute_statement(
        Database="dev", ClusterIdentifier="c1", Sqls=[f"INSERT INTO {table} VALUES (3)", "SELECT 1/0 + missing_col"]
    )
    described = wait(client, failing["Id"])
    assert described["Status"] == "FAILED" and described["Error"].startswith("ERROR: ")
    assert [s["Status"] for s in described["SubStatements"]] == ["FINISHED", "FAILED"]
    assert warehouse.execute(f"SELECT id FROM {table} ORDER BY id") == [(1,), (2,)]  # rolled back
