"""Operator parameters out of range are refused when the DAG file is parsed, never at run time.

Each message starts with the task id and names the parameter and the value given, so the
DAG author sees what to fix in the import error without running anything. The first cases
live in test_operator_semantics.py (rate text, chunk_size 0, map_mode, cluster/workgroup,
max_concurrency over the rate, on_failed_execution, poll_interval); these are the rest.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk import DAG

from step_patterns.operators import ChunkedIteratorOperator, WaitLoopOperator

SYNC = dict(task_id="sync", sql="SELECT 1", database="dev", cluster_identifier="c", role_arn="r",
            bucket="b", pipedrive_secret_arn="arn:secret")
WAIT = dict(task_id="wait", sql="SELECT 1", database="dev", cluster_identifier="c", role_arn="r")


def case(kwargs, message):
    return pytest.param(kwargs, message, id=",".join(f"{k}={v!r}" for k, v in kwargs.items()))


def refused(operator_class, kwargs) -> str:
    with DAG("d", schedule=None), pytest.raises(ValueError) as error:
        operator_class(**kwargs)
    return str(error.value)


@pytest.mark.parametrize("kwargs, message", [
    case({"rate": "0/2s"}, "rate '0/2s': N must be at least 1 request"),
    case({"rate": "20/0s"}, "rate '20/0s': the window W must be longer than 0 s"),
    case({"rate": "20 per 2s"}, "rate '20 per 2s' is not N/Ws"),
    case({"concurrency": 0}, "concurrency must be an integer >= 1, got 0"),
    case({"concurrency": "8"}, "concurrency must be an integer >= 1, got '8'"),
    case({"max_concurrency": 0}, "max_concurrency must be an integer in [1, 10000] with map_mode='DISTRIBUTED' (Step Functions' limit), got 0"),
    case({"max_failed_records": -1}, "max_failed_records must be an integer >= 0, got -1"),
    case({"chunk_size": -5}, "chunk_size must be a positive integer or None (computed), got -5"),
    case({"chunk_size": True}, "chunk_size must be a positive integer or None (computed), got True"),
    case({"map_mode": "inline"}, "map_mode must be one of DISTRIBUTED, INLINE, got 'inline'"),
    case({"rate": "10/2s", "max_concurrency": 11}, "rate 10/2s cannot be split between 11 concurrent chunk syncers"),
    case({"pipedrive_secret_arn": ""}, "give exactly one of pipedrive_conn_id (an Airflow connection) or "
                                       "pipedrive_secret_arn (a Secrets Manager secret)"),
    case({"pipedrive_conn_id": "pipedrive_default"}, "give exactly one of pipedrive_conn_id"),
    case({"redshift_conn_id": "redshift_default", "secret_arn": "arn:s"}, "give either redshift_conn_id or secret_arn/db_user, not both"),
    case({"sql": ""}, "sql must be a non-empty string"),
    case({"cluster_identifier": None}, "give exactly one of cluster_identifier"),
    case({"on_failed_execution": "again"}, "on_failed_execution must be one of redrive, restart, got 'again'"),
    case({"deferral_timeout": 3600}, "deferral_timeout must be a datetime.timedelta, got 3600"),
])
def test_the_sync_operator_names_the_parameter_and_the_value(kwargs, message):
    text = refused(ChunkedIteratorOperator, {**SYNC, **kwargs})
    assert text.startswith("sync: ") and message in text, text


def test_every_problem_of_the_sync_operator_is_named_at_once():
    text = refused(ChunkedIteratorOperator, {**SYNC, "rate": "0/2s", "concurrency": 0, "chunk_size": 0,
                                             "map_mode": "PARALEL"})
    for fragment in ("rate '0/2s'", "concurrency must be an integer >= 1, got 0",
                     "chunk_size must be a positive integer or None (computed), got 0", "got 'PARALEL'"):
        assert fragment in text, text


@pytest.mark.parametrize("kwargs, message", [
    case({"variant": "sdkk"}, "variant must be one of lambda, sdk, got 'sdkk'"),
    # the machine builder checks the poll settings; the message uses the operator's names
    case({"min_poll_seconds": 0}, "min_poll_seconds must be a whole number of seconds >= 1, got 0"),
    case({"min_poll_seconds": "2"}, "min_poll_seconds must be a whole number of seconds >= 1, got '2'"),
    case({"backoff_factor": 0.5}, "backoff_factor must be a finite number >= 1.0, got 0.5"),
    case({"max_polls": 0}, "max_polls must be an integer >= 1 (the poll budget), got 0"),
    case({"machine_timeout_seconds": 0}, "machine_timeout_seconds must be an integer in [1, 31536000]"),
    case({"poll_interval": -1}, "poll_interval must be a number of seconds > 0, got -1"),
    case({"database": None}, "database is required (or a redshift_conn_id whose Schema names it)"),
    case({"redshift_conn_id": "redshift_default", "workgroup_name": "w"}, "give exactly one of cluster_identifier"),
])
def test_the_wait_loop_operator_names_the_parameter_and_the_value(kwargs, message):
    text = refused(WaitLoopOperator, {**WAIT, **kwargs})
    assert text.startswith("wait: ") and message in text, text


@pytest.mark.parametrize("kwargs, message", [
    case({"map_mode": "INLINE", "max_concurrency": 41, "rate": "100/2s"},
         "max_concurrency must be an integer in [1, 40] with map_mode='INLINE' (Step Functions' limit), got 41"),
    case({"external_id_field": ""}, "external_id_field must be the name of the Deal custom field holding the warehouse key, got ''"),
    case({"field_mapping": {"company": 1}}, "field_mapping must map column names to Deal field names (text to text), "
                                            "got {'company': 1}"),
])
def test_what_the_machine_or_a_lambda_would_refuse_at_run_time_is_refused_at_parse_time(kwargs, message):
    text = refused(ChunkedIteratorOperator, {**SYNC, **kwargs})
    assert text.startswith("sync: ") and message in text, text


def test_good_parameters_parse_and_the_rate_is_split_between_concurrent_syncers():
    with DAG("d", schedule=None):
        sync = ChunkedIteratorOperator(**SYNC, rate="80/2s", max_concurrency=4, chunk_size=None,
                                       deferral_timeout=timedelta(hours=1))
        WaitLoopOperator(**WAIT, min_poll_seconds=1, max_poll_seconds=30)
    assert sync.build_input({})["target"]["rate"] == {"requests": 20, "per_seconds": 2.0}
