"""Typed Field JSON and result spooling of the Data API sandbox."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from step_patterns_sandbox.redshift_data.fields import Column, row_encoder
from step_patterns_sandbox.redshift_data.spool import ResultSpool


def test_values_are_encoded_like_redshift():
    columns = [
        Column("i", "int8"),
        Column("f", "float8"),
        Column("b", "bool"),
        Column("n", "numeric", 10, 2),
        Column("ts", "timestamptz"),
        Column("t", "timestamp"),
        Column("d", "date"),
        Column("s", "varchar"),
        Column("j", "super"),
        Column("v", "varbyte"),
        Column("x", "int4"),
    ]
    row = [
        2**62,
        0.5,
        False,
        Decimal("12.50"),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 2, 3, 4, 5, 600000),
        dt.date(2024, 1, 2),
        'quote " and ünïcode',
        {"a": [1, 2]},
        b"\x01\xff",
        None,
    ]
    assert json.loads(row_encoder(columns)(row)) == [
        {"longValue": 2**62},
        {"doubleValue": 0.5},
        {"booleanValue": False},
        {"stringValue": "12.50"},
        {"stringValue": "2024-01-02 03:04:05+00"},
        {"stringValue": "2024-01-02 03:04:05.600000"},
        {"stringValue": "2024-01-02"},
        {"stringValue": 'quote " and ünïcode'},
        {"stringValue": '{"a":[1,2]}'},
        {"stringValue": "01ff"},
        {"isNull": True},
    ]


def test_column_metadata_names_the_redshift_type():
    meta = Column("amount", "numeric", 12, 3).metadata()
    assert (meta["name"], meta["label"], meta["typeName"], meta["precision"], meta["scale"]) == (
        "amount", "amount", "numeric", 12, 3
    )
    assert Column("name", "varchar").metadata()["isCaseSensitive"] is True


def test_spool_serves_pages_of_page_size_rows(tmp_path):
    spool = ResultSpool([Column("n", "int4")], page_size=3, directory=str(tmp_path))
    spool.add_rows([(i,) for i in range(4)])
    spool.add_rows([(i,) for i in range(4, 7)])
    spool.finish()
    assert (spool.total_rows, spool.page_count) == (7, 3)
    pages = [json.loads(spool.page(i)) for i in range(spool.page_count)]
    assert [[r[0]["longValue"] for r in page] for page in pages] == [[0, 1, 2], [3, 4, 5], [6]]
    assert spool.size_bytes == sum(len(spool.page(i).encode()) for i in range(3))
    spool.close()
