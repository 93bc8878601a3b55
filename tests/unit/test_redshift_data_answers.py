"""Every Data API answer the sandbox sends fits botocore's output shape of its operation."""

from __future__ import annotations

import json

import pytest

from step_patterns_sandbox.redshift_data import Warehouse
from step_patterns_sandbox.redshift_data.moto_adapter import AnswerShapeError, answer

TARGET = {"database": "dev", "cluster_identifier": "c1", "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x"}


def sent(operation: str, body) -> dict:
    """The answer as it goes on the wire (checked by the adapter), decoded."""
    status, _, text = answer(operation, body)
    assert status == 200
    return json.loads(text)


def test_every_operation_answers_in_botocores_output_shape():
    with Warehouse("duckdb:///:memory:", page_size=2, workers=2) as warehouse:
        warehouse.execute("CREATE TABLE t (i INT, x DOUBLE, s VARCHAR, b BOOLEAN, d DATE, n DECIMAL(5, 2), j INT[])")
        warehouse.execute("INSERT INTO t VALUES (1, 1.5, 'a', true, DATE '2024-01-02', 12.50, [1, 2]),"
                          " (NULL, NULL, NULL, NULL, NULL, NULL, NULL), (3, 0, '', false, NULL, 0, [])")
        select = sent("ExecuteStatement", warehouse.execute_statement(
            sql="SELECT * FROM t WHERE i IS NULL OR i >= :low", parameters=[{"name": "low", "value": "0"}],
            statement_name="answers", **TARGET))["Id"]
        failing = sent("ExecuteStatement", warehouse.execute_statement(sql="SELECT * FROM missing", **TARGET))["Id"]
        batch = sent("BatchExecuteStatement", warehouse.batch_execute_statement(
            sqls=["INSERT INTO t (i) VALUES (4)", "SELECT count(*) AS c FROM t"], **TARGET))["Id"]
        failed_batch = sent("BatchExecuteStatement", warehouse.batch_execute_statement(
            sqls=["SELECT 1", "SELECT * FROM missing", "SELECT 2"], **TARGET))["Id"]
        for statement_id in (select, failing, batch, failed_batch):
            warehouse.wait(statement_id)

        pages, token = [], None
        while True:
            page = sent("GetStatementResult", warehouse.get_statement_result(select, token))
            pages.append(page)
            token = page.get("NextToken")
            if not token:
                break
        assert sum(len(page["Records"]) for page in pages) == 3
        assert sent("DescribeStatement", warehouse.describe_statement(select))["QueryParameters"]
        assert sent("DescribeStatement", warehouse.describe_statement(failing))["Error"].startswith("ERROR:")
        parent = sent("DescribeStatement", warehouse.describe_statement(batch))
        assert [sub["Status"] for sub in parent["SubStatements"]] == ["FINISHED", "FINISHED"]
        # a finished sub-statement has no Error: it is left out, never sent as null
        sub = sent("DescribeStatement", warehouse.describe_statement(f"{batch}:2"))
        assert sub["Status"] == "FINISHED" and "Error" not in sub
        assert sent("GetStatementResult", warehouse.get_statement_result(f"{batch}:2"))["Records"] == [[{"longValue": 4}]]
        statuses = [sent("DescribeStatement", warehouse.describe_statement(f"{failed_batch}:{n}"))["Status"]
                    for n in (1, 2, 3)]
        assert statuses == ["FINISHED", "FAILED", "ABORTED"]
        listed = sent("ListStatements", warehouse.list_statements(max_results=2))
        assert len(listed["Statements"]) == 2 and listed["NextToken"]
        assert sent("ListStatements", warehouse.list_statements(statement_name="answers"))["Statements"][0]["Id"] == select

        running = warehouse.execute_statement(
            sql="SELECT sum(a.range * b.range) FROM range(200000000) a, range(100000) b", **TARGET)["Id"]
        assert sent("CancelStatement", warehouse.cancel_statement(running)) == {"Status": True}
        assert sent("DescribeStatement", warehouse.describe_statement(running))["Status"] == "ABORTED"


@pytest.mark.parametrize("body, problem", [
    ({"Id": "x", "Status": "FINISHED", "Error": None}, "Error, value: None"),
    ({"Id": "x", "Status": "FINISHED", "Surprise": 1}, 'Unknown parameter: "Surprise"'),
    ({"Status": "FINISHED"}, 'Missing required parameter: "Id"'),
    ({"Id": "x", "Duration": 1.5}, "Duration"),
])
def test_an_answer_off_the_shape_is_a_loud_500_naming_the_field(body, problem):
    with pytest.raises(AnswerShapeError) as caught:
        answer("DescribeStatement", body)
    assert caught.value.code == 500
    message = json.loads(caught.value.description)["message"]
    assert message.startswith("sandbox bug: the DescribeStatement answer does not match botocore's output shape")
    assert problem in message
