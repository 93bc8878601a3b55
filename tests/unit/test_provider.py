"""step-patterns as an Airflow provider: its metadata, the ``pipedrive`` connection type and form,
and how the connection hooks read a Pipedrive or Redshift connection."""

from __future__ import annotations

import json
from importlib.metadata import entry_points, version

import pytest
from airflow.providers_manager import (
    ProvidersManager,
    _create_customized_form_field_behaviours_schema_validator,
    _create_provider_info_schema_validator,
)
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

from step_patterns.connections import ConnectionProblem, PipedriveHook, RedshiftConnectionHook
from step_patterns.provider_info import get_provider_info


def test_the_entry_point_gives_provider_info_that_airflow_accepts():
    (entry_point,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "step-patterns"]
    info = entry_point.load()()
    _create_provider_info_schema_validator().validate(info)  # what ProvidersManager checks
    assert info == get_provider_info()
    assert info["package-name"] == "step-patterns"  # must equal the distribution, or Airflow refuses it
    assert info["versions"] == [version("step-patterns")]  # from the package metadata, never typed twice


def test_airflow_lists_the_provider_its_pipedrive_connection_type_and_form():
    manager = ProvidersManager()
    assert manager.providers["step-patterns"].version == version("step-patterns")
    hook = ProvidersManagerTaskRuntime().hooks["pipedrive"]  # what a task resolves the conn type with
    assert (hook.hook_class_name, hook.connection_id_attribute_name, hook.hook_name) == (
        "step_patterns.connections.PipedriveHook", "pipedrive_conn_id", "Pipedrive")
    form = manager.field_behaviours["pipedrive"]
    assert form["relabeling"] == {"host": "Company domain", "password": "API token"}
    assert set(form["hidden_fields"]) == {"schema", "port", "login", "extra"}
    links = set(manager.extra_links_class_names)
    assert "airflow.providers.amazon.aws.links.step_function.StateMachineExecutionsDetailsLink" in links


def test_the_hook_gives_older_airflow_the_same_form():
    behaviour = PipedriveHook.get_ui_field_behaviour()
    _create_customized_form_field_behaviours_schema_validator().validate(behaviour)
    assert behaviour["relabeling"]["password"] == "API token"


def _connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.mark.parametrize("host, base_url", [
    ("mycompany", "https://mycompany.pipedrive.com"),
    ("mycompany.pipedrive.com", "https://mycompany.pipedrive.com"),
    ("https://mycompany.pipedrive.com/", "https://mycompany.pipedrive.com"),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),  # the local cloud's Pipedrive, as given
])
def test_the_base_url_comes_from_the_company_domain_or_a_full_url(monkeypatch, host, base_url):
    _connection(monkeypatch, "pipedrive_test", conn_type="pipedrive", host=host, password="token-1234567")
    hook = PipedriveHook("pipedrive_test")
    assert (hook.base_url(), hook.api_token()) == (base_url, "token-1234567")


@pytest.mark.parametrize("fields, message", [
    ({"host": "mycompany"}, "connection 'pipedrive_test' has no API token (its Password field)"),
    ({"password": "token-1234567"}, "connection 'pipedrive_test' has no company domain (its Host field)"),
    ({"host": "ftp://files", "password": "t"}, "connection 'pipedrive_test': Host 'ftp://files' is not an http(s) URL"),
])
def test_an_incomplete_pipedrive_connection_is_named_in_one_line(monkeypatch, fields, message):
    _connection(monkeypatch, "pipedrive_test", conn_type="pipedrive", **fields)
    hook = PipedriveHook("pipedrive_test")
    with pytest.raises(ConnectionProblem) as problem:
        hook.api_token(), hook.base_url()  # the first missing part raises
    assert str(problem.value) == message


class NoSecrets:
    """Connections without a password need no secret: anything asking for one is a bug."""

    def ensure_owned_secret(self, *args):
        raise AssertionError("no secret expected")


@pytest.mark.parametrize("fields, given, expected", [
    ({"host": "analytics.abc123.eu-west-1.redshift.amazonaws.com", "schema": "dev", "login": "etl"}, {},
     ("dev", "analytics", None, None, "etl")),
    ({"schema": "dev", "extra": {"cluster_identifier": "main"}}, {"database": "other"},
     ("other", "main", None, None, None)),
    ({"host": "wg.123.eu-west-1.redshift-serverless.amazonaws.com", "schema": "dev",
      "extra": {"is_serverless": True, "serverless_work_group": "reporting"}}, {},
     ("dev", None, "reporting", None, None)),
    ({"schema": "dev"}, {"workgroup_name": "given"}, ("dev", None, "given", None, None)),
])
def test_a_redshift_connection_maps_to_the_data_api_target(monkeypatch, fields, given, expected):
    _connection(monkeypatch, "redshift_test", conn_type="redshift", **fields)
    target = RedshiftConnectionHook("redshift_test").target(NoSecrets(), **given)
    assert (target.database, target.cluster_identifier, target.workgroup_name, target.secret_arn,
            target.db_user) == expected


@pytest.mark.parametrize("fields, message", [
    ({"host": "c.x.redshift.amazonaws.com"}, "has no database (its Schema field) and the task gives none"),
    ({"schema": "dev"}, "names no cluster (extra cluster_identifier or Host) and no workgroup"),
    ({"schema": "dev", "host": "c", "password": "p-123456"}, "has a Password but no Login"),
])
def test_an_incomplete_redshift_connection_is_named_in_one_line(monkeypatch, fields, message):
    _connection(monkeypatch, "redshift_test", conn_type="redshift", **fields)
    with pytest.raises(ConnectionProblem, match="connection 'redshift_test'") as problem:
        RedshiftConnectionHook("redshift_test").target(NoSecrets())
    assert message in str(problem.value) and "\n" not in str(problem.value)


def test_a_task_whose_connection_lacks_the_token_fails_in_one_line_naming_it(monkeypatch):
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowException

    from step_patterns.operators import ChunkedIteratorOperator

    _connection(monkeypatch, "pipedrive_test", conn_type="pipedrive", host="mycompany")
    with DAG("d", schedule=None):
        sync = ChunkedIteratorOperator(task_id="sync", sql="SELECT 1", database="dev", cluster_identifier="c",
                                       role_arn="r", bucket="b", pipedrive_conn_id="pipedrive_test")
    with pytest.raises(AirflowException) as failure:
        sync.execute({})  # before any AWS call: the connection is read first
    assert str(failure.value) == "sync: connection 'pipedrive_test' has no API token (its Password field)"
