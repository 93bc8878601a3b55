import re

from hypothesis import given, strategies as st

from step_patterns.naming import MAX_NAME, stable_name

VALID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def test_same_task_run_gets_same_name():
    a = stable_name("daily_sync", "sync", "scheduled__2026-11-27T00:00:00+00:00")
    assert a == stable_name("daily_sync", "sync", "scheduled__2026-11-27T00:00:00+00:00")
    assert a.startswith("daily_sync-sync-scheduled__2026-11-27T00-00-00-00-00-")


def test_runs_that_differ_only_in_replaced_characters_get_different_names():
    assert stable_name("d", "t", "run:1") != stable_name("d", "t", "run/1")


def test_suffix_is_kept_even_when_parts_are_cut():
    name = stable_name("d" * 200, "t" * 200, "r" * 200, suffix="try2")
    assert len(name) == MAX_NAME
    assert name.endswith("-try2")


@given(st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=4), st.sampled_from(["", "try3"]))
def test_any_input_gives_a_valid_step_functions_name(parts, suffix):
    assert VALID.match(stable_name(*parts, suffix=suffix))
