"""State graphs and the state machine: validated on construction, rendered deterministically."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from step_lambdas.contract import checks

from .states import State, all_states_of


class InvalidStateMachine(ValueError):
    """The states do not form a valid machine; the message lists every problem found."""


@dataclass(frozen=True)
class StateGraph:
    """``StartAt`` + ``States``: the body of a machine or of a Map's ItemProcessor."""

    start_at: str
    states: tuple[State, ...]

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise InvalidStateMachine("; ".join(problems))

    def by_name(self) -> dict[str, State]:
        return {state.name: state for state in self.states}

    def problems(self, scope: str = "") -> list[str]:
        where = f" in {scope}" if scope else ""
        names = [state.name for state in self.states]
        problems = [f"state {name!r} is defined twice{where}" for name in sorted(set(names)) if names.count(name) > 1]
        states = self.by_name()
        if self.start_at not in states:
            problems.append(f"StartAt {self.start_at!r} is not a state{where}")
            return problems
        for state in self.states:
            problems += [
                f"{state.name!r} goes to {edge.target!r}, which is not a state{where}"
                for edge in state.edges()
                if edge.target not in states
            ]
        if problems:
            return problems
        reachable = _reachable({self.start_at}, lambda name: [e.target for e in states[name].edges()])
        problems += [f"state {name!r} is unreachable from {self.start_at!r}{where}" for name in names if name not in reachable]
        # A state that can never reach an end is an infinite loop (a dead end that burns history).
        predecessors: dict[str, list[str]] = {name: [] for name in names}
        for state in self.states:
            for edge in state.edges():
                predecessors[edge.target].append(state.name)
        can_end = _reachable({s.name for s in self.states if s.is_end}, lambda name: predecessors[name])
        problems += [f"state {name!r} can never reach an end state{where}" for name in names if name not in can_end]
        return problems

    def render(self) -> dict[str, Any]:
        return {"StartAt": self.start_at, "States": {state.name: state.render() for state in self.states}}


def _reachable(start: set[str], neighbours) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in neighbours(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@dataclass(frozen=True)
class StateMachine:
    """A whole Standard state machine definition."""

    graph: StateGraph
    comment: str | None = None
    timeout_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.timeout_seconds is not None:
            try:
                checks.execution_timeout("TimeoutSeconds", self.timeout_seconds)
            except ValueError as error:
                raise InvalidStateMachine(str(error)) from None
        # Names must be unique across the whole machine, Map processors included, so that
        # execution history and diagrams never leave a doubt which state is meant.
        names = [s.name for top in self.graph.states for s in all_states_of(top)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidStateMachine(f"state names used more than once in the machine: {', '.join(duplicates)}")

    def states(self) -> list[State]:
        """Every state, nested ones included, in definition order."""
        return [s for top in self.graph.states for s in all_states_of(top)]

    def to_dict(self) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        if self.comment:
            definition["Comment"] = self.comment
        definition |= self.graph.render()
        if self.timeout_seconds is not None:
            definition["TimeoutSeconds"] = self.timeout_seconds
        return definition

    def to_json(self, indent: int | None = 2) -> str:
        """Stable JSON: sorted keys, so equal machines give byte-equal text."""
        separators = (",", ": ") if indent is not None else (",", ":")
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, separators=separators)

    def definition_hash(self) -> str:
        """SHA-256 of the compact canonical JSON: compare to decide whether to update."""
        return hashlib.sha256(self.to_json(indent=None).encode("utf-8")).hexdigest()


def definition_hash_of(definition: str | dict[str, Any]) -> str:
    """Hash an existing definition (e.g. from DescribeStateMachine) the same way."""
    parsed = json.loads(definition) if isinstance(definition, str) else definition
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
