"""The building blocks: graph validation, payload templates, conditions, rendering."""

from __future__ import annotations

import json

import pytest

from step_patterns.asl import (
    Catch,
    Choice,
    ChoiceRule,
    Condition,
    Fail,
    Intrinsic,
    InvalidStateMachine,
    ItemReader,
    JsonPath,
    Map,
    Pass,
    StateGraph,
    StateMachine,
    Succeed,
    Task,
    Wait,
    WaitTime,
    definition_hash_of,
)
from step_patterns.asl.paths import render_template

LAMBDA = "arn:aws:states:::lambda:invoke"


def test_dangling_next_is_refused_naming_the_state_and_target():
    with pytest.raises(InvalidStateMachine) as error:
        StateGraph("A", (Pass(name="A", next="B"),))
    assert "'A' goes to 'B', which is not a state" in str(error.value)


def test_dangling_choice_default_and_catch_are_refused():
    choice = Choice(name="C", rules=(ChoiceRule(Condition.string_equals("$.x", "y"), "Done"),), default="Nowhere")
    with pytest.raises(InvalidStateMachine, match="'C' goes to 'Nowhere'"):
        StateGraph("C", (choice, Succeed(name="Done")))
    task = Task(name="T", resource=LAMBDA, catch=(Catch(("States.ALL",), "Missing"),))
    with pytest.raises(InvalidStateMachine, match="'T' goes to 'Missing'"):
        StateGraph("T", (task,))


def test_missing_start_unreachable_and_duplicate_states_are_refused():
    with pytest.raises(InvalidStateMachine, match="StartAt 'X' is not a state"):
        StateGraph("X", (Succeed(name="A"),))
    with pytest.raises(InvalidStateMachine, match="state 'B' is unreachable from 'A'"):
        StateGraph("A", (Succeed(name="A"), Succeed(name="B")))
    with pytest.raises(InvalidStateMachine, match="state 'A' is defined twice"):
        StateGraph("A", (Succeed(name="A"), Succeed(name="A")))


def test_a_loop_with_no_way_out_is_a_dead_end():
    with pytest.raises(InvalidStateMachine) as error:
        StateGraph("A", (Pass(name="A", next="B"), Wait(name="B", time=WaitTime.seconds(1), next="A")))
    assert "state 'A' can never reach an end state" in str(error.value)
    # the same loop with an exit is fine
    exit_rule = ChoiceRule(Condition.boolean_equals("$.done", True), "Done")
    StateGraph(
        "A",
        (Pass(name="A", next="B"), Choice(name="B", rules=(exit_rule,), default="A"), Succeed(name="Done")),
    )


def test_names_are_unique_across_map_processors():
    inner = StateGraph("Same", (Succeed(name="Same"),))
    with pytest.raises(InvalidStateMachine, match="used more than once in the machine: Same"):
        StateMachine(StateGraph("M", (Map(name="M", processor=inner, items_path="$.items", next="Same"), Succeed(name="Same"))))


def test_state_values_are_checked_on_construction():
    with pytest.raises(ValueError, match="state name 'has space'"):
        Succeed(name="has space")
    with pytest.raises(ValueError, match="must start with '\\$'"):
        JsonPath("poll.wait_seconds")
    with pytest.raises(ValueError, match="States.Name"):
        Intrinsic("MathAdd($.a, 1)")
    with pytest.raises(ValueError, match="Resource must be an ARN"):
        Task(name="T", resource="lambda")
    with pytest.raises(ValueError, match="Wait seconds must be an integer"):
        WaitTime.seconds(-1)
    with pytest.raises(ValueError, match="StringEquals on \\$.status needs"):
        Condition.string_equals("$.status", 3)
    with pytest.raises(ValueError, match="a DISTRIBUTED Map reads its items with an ItemReader"):
        Map(name="M", processor=StateGraph("S", (Succeed(name="S"),)), mode="DISTRIBUTED", items_path="$.x")
    with pytest.raises(ValueError, match="ToleratedFailurePercentage needs a DISTRIBUTED Map"):
        Map(name="M", processor=StateGraph("S", (Succeed(name="S"),)), items_path="$.x", tolerated_failure_percentage=1.0)


def test_templates_suffix_dynamic_keys_and_refuse_hand_written_ones():
    rendered = render_template(
        {"FunctionName": "arn:x", "Payload": {"id": JsonPath("$.statement.statement_id"), "n": Intrinsic("States.MathAdd($.n, 1)")},
         "list": [1, {"a": JsonPath("$$.Execution.Name")}], "none": None}
    )
    assert rendered == {
        "FunctionName": "arn:x",
        "Payload": {"id.$": "$.statement.statement_id", "n.$": "States.MathAdd($.n, 1)"},
        "list": [1, {"a.$": "$$.Execution.Name"}],
        "none": None,
    }
    with pytest.raises(ValueError, match="use JsonPath/Intrinsic values"):
        render_template({"Payload.$": "$"})
    with pytest.raises(ValueError, match="must be the value of an object key"):
        render_template({"list": [JsonPath("$.a")]})


def test_fail_renders_literal_or_path_error_and_cause():
    assert Fail(name="F", error="E", cause="c").render() == {"Type": "Fail", "Error": "E", "Cause": "c"}
    assert Fail(name="F", error=JsonPath("$.e"), cause=Intrinsic("States.Format('{}', $.c)")).render() == {
        "Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('{}', $.c)",
    }


def test_map_renders_item_reader_and_float_tolerance():
    processor = StateGraph("S", (Succeed(name="S"),))
    rendered = Map(
        name="M", processor=processor, mode="DISTRIBUTED",
        item_reader=ItemReader(bucket=JsonPath("$.b"), key=JsonPath("$.k")),
        max_concurrency=2, tolerated_failure_percentage=10, result_path=None,
    ).render()
    assert rendered["ToleratedFailurePercentage"] == 10.0 and isinstance(rendered["ToleratedFailurePercentage"], float)
    assert rendered["ItemProcessor"] == {
        "StartAt": "S", "States": {"S": {"Type": "Succeed"}},
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
    }
    assert rendered["End"] is True and rendered["ResultPath"] is None


def test_to_json_is_sorted_and_hash_matches_a_reparsed_definition():
    machine = StateMachine(StateGraph("B", (Pass(name="B", parameters={"z": 1, "a": 2}, next="A"), Succeed(name="A"))), comment="c")
    text = machine.to_json()
    assert list(json.loads(text)["States"]) == ["A", "B"]  # sorted, independent of definition order
    assert definition_hash_of(text) == machine.definition_hash()
    assert definition_hash_of(json.loads(text)) == machine.definition_hash()
    # what Step Functions hands back may be formatted differently: same hash
    assert definition_hash_of(json.dumps(json.loads(text), indent=4)) == machine.definition_hash()
