"""Typed ASL states that render themselves to definition dicts.

Only the state types and fields our two machines need. Each state knows its outgoing
edges (``edges()``) so the machine can validate the graph and draw it. ``next=None`` on a
state that can continue means ``"End": true``: a state cannot have both or neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from step_lambdas.contract import checks

from .conditions import Condition
from .paths import Intrinsic, JsonPath, render_template

MAX_SECONDS = 99_999_999  # ASL's ceiling for second counts (statelint and AWS agree)


def _check_name(name: str) -> None:
    # AWS limit: 80 characters; names become diagram ids, so keep them simple too.
    if not name or len(name) > 80 or not name.replace("_", "").isalnum():
        raise ValueError(f"state name {name!r} must be 1-80 letters, digits or '_'")


def _check_seconds(what: str, value: int, minimum: int = 0) -> None:
    checks.integer(what, value, minimum, MAX_SECONDS)


@dataclass(frozen=True)
class Edge:
    """One outgoing transition, with a label for diagrams."""

    target: str
    label: str = ""
    kind: Literal["next", "choice", "default", "catch"] = "next"


@dataclass(frozen=True)
class Retry:
    errors: tuple[str, ...]
    interval_seconds: int = 2
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: int | None = None
    jitter: Literal["FULL", "NONE"] | None = None

    def __post_init__(self) -> None:
        if not self.errors:
            raise ValueError("Retry needs at least one error name")
        _check_seconds("Retry interval_seconds", self.interval_seconds, minimum=1)
        _check_seconds("Retry max_attempts", self.max_attempts)
        if not isinstance(self.backoff_rate, (int, float)) or self.backoff_rate < 1.0:
            raise ValueError(f"Retry backoff_rate must be >= 1.0, got {self.backoff_rate!r}")
        if self.max_delay_seconds is not None:
            _check_seconds("Retry max_delay_seconds", self.max_delay_seconds, minimum=1)

    def render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            # statelint wants a float here (and AWS accepts one)
            "BackoffRate": float(self.backoff_rate),
        }
        if self.max_delay_seconds is not None:
            rendered["MaxDelaySeconds"] = self.max_delay_seconds
        if self.jitter is not None:
            rendered["JitterStrategy"] = self.jitter
        return rendered


@dataclass(frozen=True)
class Catch:
    errors: tuple[str, ...]
    next: str
    result_path: str | None = "$.error"

    def __post_init__(self) -> None:
        if not self.errors:
            raise ValueError("Catch needs at least one error name")
        if self.result_path is not None:
            JsonPath(self.result_path)

    def render(self) -> dict[str, Any]:
        return {"ErrorEquals": list(self.errors), "Next": self.next, "ResultPath": self.result_path}


@dataclass(frozen=True)
class WaitTime:
    """How long a Wait state waits: a literal number of seconds or a path to one."""

    field: Literal["Seconds", "SecondsPath"]
    value: int | str

    @staticmethod
    def seconds(seconds: int) -> WaitTime:
        _check_seconds("Wait seconds", seconds)
        return WaitTime("Seconds", seconds)

    @staticmethod
    def seconds_path(path: str) -> WaitTime:
        return WaitTime("SecondsPath", JsonPath(path).path)


@dataclass(frozen=True, kw_only=True)
class State:
    name: str
    comment: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def type(self) -> str:
        return type(self).__name__

    def edges(self) -> list[Edge]:
        return []

    @property
    def is_end(self) -> bool:
        """True when the execution (or Map iteration) may end in this state."""
        return True

    def render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {"Type": self.type}
        if self.comment:
            rendered["Comment"] = self.comment
        return rendered


@dataclass(frozen=True, kw_only=True)
class _Continuing(State):
    """A state that goes on to ``next`` or ends the (sub)machine when ``next`` is None."""

    next: str | None = None

    def edges(self) -> list[Edge]:
        return [Edge(self.next)] if self.next else []

    @property
    def is_end(self) -> bool:
        return self.next is None

    def _transition(self) -> dict[str, Any]:
        return {"Next": self.next} if self.next else {"End": True}


def _io(
    parameters: dict | None = None,
    result_selector: dict | None = None,
    result_path: str | None | Literal["$"] = "$",
    output_path: str = "$",
    where: str = "",
) -> dict[str, Any]:
    """Input/output processing fields shared by Task, Pass and Map; defaults left out."""
    rendered: dict[str, Any] = {}
    if parameters is not None:
        rendered["Parameters"] = render_template(parameters, f"{where}.Parameters")
    if result_selector is not None:
        rendered["ResultSelector"] = render_template(result_selector, f"{where}.ResultSelector")
    if result_path != "$":
        if result_path is not None:
            JsonPath(result_path)
        rendered["ResultPath"] = result_path
    if output_path != "$":
        rendered["OutputPath"] = JsonPath(output_path).path
    return rendered


def _error_handling(retry: tuple[Retry, ...], catch: tuple[Catch, ...]) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if retry:
        rendered["Retry"] = [r.render() for r in retry]
    if catch:
        rendered["Catch"] = [c.render() for c in catch]
    return rendered


def _catch_edges(catch: tuple[Catch, ...]) -> list[Edge]:
    return [Edge(c.next, "catch " + ", ".join(c.errors), "catch") for c in catch]


@dataclass(frozen=True, kw_only=True)
class Task(_Continuing):
    resource: str
    parameters: dict | None = None
    result_selector: dict | None = None
    result_path: str | None = "$"
    output_path: str = "$"
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.resource.startswith("arn:"):
            raise ValueError(f"{self.name}: Resource must be an ARN, got {self.resource!r}")

    def edges(self) -> list[Edge]:
        return super().edges() + _catch_edges(self.catch)

    def render(self) -> dict[str, Any]:
        rendered = super().render() | {"Resource": self.resource}
        rendered |= _io(self.parameters, self.result_selector, self.result_path, self.output_path, self.name)
        return rendered | _error_handling(self.retry, self.catch) | self._transition()


@dataclass(frozen=True, kw_only=True)
class Pass(_Continuing):
    """Reshapes the payload with a ``parameters`` template (or passes it through)."""

    parameters: dict | None = None
    result_path: str | None = "$"

    def render(self) -> dict[str, Any]:
        rendered = super().render()
        rendered |= _io(self.parameters, None, self.result_path, where=self.name)
        return rendered | self._transition()


@dataclass(frozen=True, kw_only=True)
class Wait(_Continuing):
    time: WaitTime

    def render(self) -> dict[str, Any]:
        return super().render() | {self.time.field: self.time.value} | self._transition()


@dataclass(frozen=True)
class ChoiceRule:
    condition: Condition
    next: str

    def render(self) -> dict[str, Any]:
        return self.condition.render() | {"Next": self.next}


@dataclass(frozen=True, kw_only=True)
class Choice(State):
    rules: tuple[ChoiceRule, ...]
    default: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rules:
            raise ValueError(f"{self.name}: a Choice needs at least one rule")

    def edges(self) -> list[Edge]:
        edges = [Edge(rule.next, rule.condition.describe(), "choice") for rule in self.rules]
        if self.default:
            edges.append(Edge(self.default, "otherwise", "default"))
        return edges

    @property
    def is_end(self) -> bool:
        return False

    def render(self) -> dict[str, Any]:
        rendered = super().render() | {"Choices": [rule.render() for rule in self.rules]}
        if self.default:
            rendered["Default"] = self.default
        return rendered


@dataclass(frozen=True, kw_only=True)
class Succeed(State):
    output_path: str = "$"

    def render(self) -> dict[str, Any]:
        return super().render() | _io(output_path=self.output_path)


@dataclass(frozen=True, kw_only=True)
class Fail(State):
    """Ends the execution as failed; error/cause are literals or paths/intrinsics."""

    error: str | JsonPath | Intrinsic
    cause: str | JsonPath | Intrinsic

    def render(self) -> dict[str, Any]:
        rendered = super().render()
        for key, value in (("Error", self.error), ("Cause", self.cause)):
            if isinstance(value, (JsonPath, Intrinsic)):
                rendered[f"{key}Path"] = str(value)
            else:
                rendered[key] = value
        return rendered


@dataclass(frozen=True)
class ItemReader:
    """Distributed Map input read from S3 (the manifest): a JSON array of items."""

    bucket: JsonPath
    key: JsonPath
    input_type: Literal["JSON"] = "JSON"
    resource: str = "arn:aws:states:::s3:getObject"

    def render(self) -> dict[str, Any]:
        return {
            "Resource": self.resource,
            "ReaderConfig": {"InputType": self.input_type},
            "Parameters": render_template({"Bucket": self.bucket, "Key": self.key}),
        }


@dataclass(frozen=True, kw_only=True)
class Map(_Continuing):
    """A Map state; INLINE reads ``items_path``, DISTRIBUTED reads ``item_reader``."""

    processor: Any  # StateGraph (machine.py); typed loosely to avoid an import cycle
    mode: Literal["INLINE", "DISTRIBUTED"] = "INLINE"
    items_path: str | None = None
    item_reader: ItemReader | None = None
    item_selector: dict | None = None
    max_concurrency: int = 0
    tolerated_failure_percentage: float = 0.0
    child_execution_type: Literal["STANDARD", "EXPRESS"] = "STANDARD"
    result_path: str | None = "$"
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.map_mode(f"{self.name}: mode", self.mode)
        if self.mode == "INLINE":
            if self.item_reader is not None:
                raise ValueError(f"{self.name}: an INLINE Map reads ItemsPath, not an ItemReader")
            if self.tolerated_failure_percentage:
                raise ValueError(f"{self.name}: ToleratedFailurePercentage needs a DISTRIBUTED Map")
        elif self.item_reader is None or self.items_path is not None:
            raise ValueError(f"{self.name}: a DISTRIBUTED Map reads its items with an ItemReader")
        if self.items_path is not None:
            JsonPath(self.items_path)
        _check_seconds(f"{self.name}: MaxConcurrency", self.max_concurrency)
        checks.number(f"{self.name}: ToleratedFailurePercentage", self.tolerated_failure_percentage, 0, 100)

    def edges(self) -> list[Edge]:
        return super().edges() + _catch_edges(self.catch)

    def render(self) -> dict[str, Any]:
        processor = self.processor.render()
        processor["ProcessorConfig"] = {"Mode": self.mode}
        if self.mode == "DISTRIBUTED":
            processor["ProcessorConfig"]["ExecutionType"] = self.child_execution_type
        rendered = super().render() | {"ItemProcessor": processor}
        if self.items_path is not None:
            rendered["ItemsPath"] = self.items_path
        if self.item_reader is not None:
            rendered["ItemReader"] = self.item_reader.render()
        if self.item_selector is not None:
            rendered["ItemSelector"] = render_template(self.item_selector, f"{self.name}.ItemSelector")
        if self.max_concurrency:
            rendered["MaxConcurrency"] = self.max_concurrency
        if self.tolerated_failure_percentage:
            # float, not int: moto's parser rejects an integer here. 0 (the ASL default) is
            # left out because statelint 3.1 insists on an integer.
            rendered["ToleratedFailurePercentage"] = float(self.tolerated_failure_percentage)
        rendered |= _io(result_path=self.result_path, where=self.name)
        return rendered | _error_handling(self.retry, self.catch) | self._transition()


def all_states_of(state: State) -> list[State]:
    """The state itself plus every state nested in it (Map processors), depth first."""
    nested = [state]
    if isinstance(state, Map):
        for inner in state.processor.states:
            nested.extend(all_states_of(inner))
    return nested


__all__ = [
    "Catch", "Choice", "ChoiceRule", "Edge", "Fail", "ItemReader", "Map", "Pass", "Retry",
    "State", "Succeed", "Task", "Wait", "WaitTime", "all_states_of",
]
