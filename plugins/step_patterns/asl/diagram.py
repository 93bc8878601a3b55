"""Diagrams of a state machine as text: Mermaid ``stateDiagram-v2`` and Graphviz DOT.

Pure text generation from the typed states (their edges and labels), so the pictures can
never disagree with the JSON they come from.
"""

from __future__ import annotations

from .machine import StateGraph, StateMachine
from .states import Choice, Fail, Map, State, Succeed, Task, Wait

_SERVICE_PREFIX = "arn:aws:states:::"


def _summary(state: State) -> str:
    """One line under the state name: its type and the detail that matters."""
    if isinstance(state, Task):
        return f"Task {state.resource.removeprefix(_SERVICE_PREFIX)}"
    if isinstance(state, Wait):
        return f"Wait {state.time.value} s"
    if isinstance(state, Fail):
        return f"Fail {state.error}" if isinstance(state.error, str) else "Fail"
    if isinstance(state, Map):
        return f"Map {state.mode}"
    return state.type


# ---------------------------------------------------------------- Mermaid


def _mermaid_label(text: str) -> str:
    # ';' ends a statement and '#' starts an entity code in Mermaid: keep labels plain.
    return text.replace(";", ",").replace("#", "")


def to_mermaid(machine: StateMachine) -> str:
    lines = ["stateDiagram-v2"]
    _mermaid_graph(machine.graph, lines, indent="    ")
    fails = [s.name for s in machine.states() if isinstance(s, Fail)]
    succeeds = [s.name for s in machine.states() if isinstance(s, Succeed)]
    choices = [s.name for s in machine.states() if isinstance(s, Choice)]
    lines.append("    classDef failState fill:#fdd,stroke:#c33")
    lines.append("    classDef succeedState fill:#dfd,stroke:#393")
    lines.append("    classDef choiceState fill:#ffd,stroke:#aa3")
    for names, css in ((fails, "failState"), (succeeds, "succeedState"), (choices, "choiceState")):
        if names:
            lines.append(f"    class {','.join(names)} {css}")
    return "\n".join(lines) + "\n"


def _mermaid_graph(graph: StateGraph, lines: list[str], indent: str) -> None:
    for state in graph.states:
        if isinstance(state, Map):
            # a composite state; its braces already say it is a Map, so no summary line
            lines.append(f"{indent}state {state.name} {{")
            _mermaid_graph(state.processor, lines, indent + "    ")
            lines.append(f"{indent}}}")
        else:
            lines.append(f"{indent}{state.name} : {_mermaid_label(_summary(state))}")
    lines.append(f"{indent}[*] --> {graph.start_at}")
    for state in graph.states:
        for edge in state.edges():
            label = f" : {_mermaid_label(edge.label)}" if edge.label else ""
            lines.append(f"{indent}{state.name} --> {edge.target}{label}")
        if state.is_end:
            lines.append(f"{indent}{state.name} --> [*]")


# ---------------------------------------------------------------- Graphviz DOT


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_node(state: State) -> str:
    label = _dot_quote(f"{state.name}\n{_summary(state)}").replace("\n", "\\n")
    style = {
        Choice: 'shape=diamond, fillcolor="#ffffdd"',
        Fail: 'shape=octagon, fillcolor="#ffdddd"',
        Succeed: 'shape=box, peripheries=2, fillcolor="#ddffdd"',
    }.get(type(state), 'shape=box, fillcolor="#e8eefc"')
    return f"{_dot_quote(state.name)} [label={label}, {style}];"


def to_dot(machine: StateMachine, name: str = "state_machine") -> str:
    lines = [
        f"digraph {_dot_quote(name)} {{",
        "  rankdir=TB;",
        '  node [style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    _dot_graph(machine.graph, lines, indent="  ", scope="")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_graph(graph: StateGraph, lines: list[str], indent: str, scope: str) -> None:
    start, end = f"{scope}__start__", f"{scope}__end__"
    lines.append(f'{indent}{_dot_quote(start)} [label="", shape=circle, width=0.2, style=filled, fillcolor=black];')
    lines.append(f'{indent}{_dot_quote(end)} [label="", shape=doublecircle, width=0.2, style=filled, fillcolor=black];')
    lines.append(f"{indent}{_dot_quote(start)} -> {_dot_quote(graph.start_at)};")
    for state in graph.states:
        lines.append(indent + _dot_node(state))
        if isinstance(state, Map):
            inner = f"{state.name}."
            lines.append(f"{indent}subgraph {_dot_quote('cluster_' + state.name)} {{")
            lines.append(f"{indent}  label={_dot_quote(f'{state.name}: each item')}; style=dashed;")
            _dot_graph(state.processor, lines, indent + "  ", scope=inner)
            lines.append(f"{indent}}}")
            lines.append(f'{indent}{_dot_quote(state.name)} -> {_dot_quote(inner + "__start__")} [style=dotted, arrowhead=none];')
        for edge in state.edges():
            attributes = [f"label={_dot_quote(edge.label)}"] if edge.label else []
            if edge.kind == "catch":
                attributes += ["style=dashed", 'color="#cc3333"', 'fontcolor="#cc3333"']
            suffix = f" [{', '.join(attributes)}]" if attributes else ""
            lines.append(f"{indent}{_dot_quote(state.name)} -> {_dot_quote(edge.target)}{suffix};")
        if state.is_end:
            lines.append(f"{indent}{_dot_quote(state.name)} -> {_dot_quote(end)};")
