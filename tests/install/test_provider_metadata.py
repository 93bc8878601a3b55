"""Airflow knows step-patterns as a provider in a production install: it is listed (the data of
``airflow providers list``) and its ``pipedrive`` connection type exists (the connection form)."""

from __future__ import annotations


def test_airflow_lists_step_patterns_as_a_provider(installed):
    assert "step-patterns" in installed["providers"].get("packages", []), installed["providers"]


def test_the_pipedrive_connection_type_exists(installed):
    assert "pipedrive" in installed["providers"].get("connection_types", []), installed["providers"]
