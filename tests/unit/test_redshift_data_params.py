"""Named :param translation of the Data API sandbox (pure)."""

from __future__ import annotations

import pytest

from step_patterns_sandbox.redshift_data.params import ParameterError, bind, parameters_by_name, referenced_names


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '::x :a'",
        "SELECT 'it''s :a'",
        "SELECT E'\\' :a'",
        'SELECT "col:a" FROM t',
        "SELECT 1 -- :a\n",
        "SELECT /* :a /* nested :b */ still :c */ 1",
        "SELECT $$ :a $$, $tag$ :b $tag$",
        "SELECT x::int, y::varchar(3)",
    ],
)
def test_colons_outside_code_are_not_parameters(sql):
    assert referenced_names(sql) == []
    assert bind(sql, None, "dollar").sql == sql


def test_dollar_style_reuses_a_number_per_name():
    bound = bind("SELECT :a::int, ':a', :b, :a", {"a": "1", "b": "x"}, "dollar")
    assert bound.sql == "SELECT $1::int, ':a', $2, $1"
    assert bound.values == ["1", "x"]


def test_pyformat_style_repeats_values_and_escapes_percent():
    bound = bind("SELECT :a, '100%' LIKE :b, :a -- 5% of :c\n", {"a": "1", "b": "1%"}, "pyformat")
    assert bound.sql == "SELECT %s, '100%%' LIKE %s, %s -- 5%% of :c\n"
    assert bound.values == ["1", "1%", "1"]


def test_missing_and_unused_parameters_are_named():
    with pytest.raises(ParameterError, match=":b"):
        bind("SELECT :a, :b", {"a": "1"}, "dollar")
    with pytest.raises(ParameterError, match="extra"):
        bind("SELECT :a", {"a": "1", "extra": "2"}, "dollar")


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ([{"name": "a"}], "Parameters[0]"),
        ([{"name": "1a", "value": "x"}], "not a valid parameter name"),
        ([{"name": "a", "value": 1}], "must be a string"),
        ([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}], "more than once"),
    ],
)
def test_malformed_parameter_lists_are_rejected(parameters, fragment):
    with pytest.raises(ParameterError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        parameters_by_name(parameters)
