"""Choice-rule conditions as value objects (only the comparisons our machines use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .paths import JsonPath

# comparison operator -> (expected Python type of the literal operand, symbol for diagrams)
_LITERAL_OPERATORS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "StringEquals": (str, "=="),
    "BooleanEquals": (bool, "=="),
    "NumericEquals": ((int, float), "=="),
    "NumericLessThan": ((int, float), "<"),
    "NumericGreaterThanEquals": ((int, float), ">="),
}
_PATH_OPERATORS: dict[str, str] = {
    "NumericGreaterThanPath": ">",
}


class Condition:
    """Base of all conditions; build them with the static constructors below."""

    def render(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """Short human text for diagrams (``statement.status == FINISHED``)."""
        raise NotImplementedError

    @staticmethod
    def string_equals(variable: str, value: str) -> Condition:
        return _Comparison(JsonPath(variable), "StringEquals", value)

    @staticmethod
    def boolean_equals(variable: str, value: bool) -> Condition:
        return _Comparison(JsonPath(variable), "BooleanEquals", value)

    @staticmethod
    def number_less_than(variable: str, value: int | float) -> Condition:
        return _Comparison(JsonPath(variable), "NumericLessThan", value)

    @staticmethod
    def number_greater_than_equals(variable: str, value: int | float) -> Condition:
        return _Comparison(JsonPath(variable), "NumericGreaterThanEquals", value)

    @staticmethod
    def number_greater_than_path(variable: str, other: str) -> Condition:
        return _PathComparison(JsonPath(variable), "NumericGreaterThanPath", JsonPath(other))

    @staticmethod
    def and_(*conditions: Condition) -> Condition:
        return _Compound("And", tuple(conditions))

    @staticmethod
    def or_(*conditions: Condition) -> Condition:
        return _Compound("Or", tuple(conditions))


def _short(path: JsonPath) -> str:
    return path.path.removeprefix("$.")


@dataclass(frozen=True)
class _Comparison(Condition):
    variable: JsonPath
    operator: str
    value: Any

    def __post_init__(self) -> None:
        expected, _ = _LITERAL_OPERATORS[self.operator]
        numeric_bool = isinstance(self.value, bool) and expected != bool
        if not isinstance(self.value, expected) or numeric_bool:
            raise ValueError(f"{self.operator} on {self.variable} needs {expected}, got {self.value!r}")

    def render(self) -> dict[str, Any]:
        return {"Variable": self.variable.path, self.operator: self.value}

    def describe(self) -> str:
        value = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"{_short(self.variable)} {_LITERAL_OPERATORS[self.operator][1]} {value}"


@dataclass(frozen=True)
class _PathComparison(Condition):
    variable: JsonPath
    operator: str
    other: JsonPath

    def render(self) -> dict[str, Any]:
        return {"Variable": self.variable.path, self.operator: self.other.path}

    def describe(self) -> str:
        return f"{_short(self.variable)} {_PATH_OPERATORS[self.operator]} {_short(self.other)}"


@dataclass(frozen=True)
class _Compound(Condition):
    operator: str
    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError(f"{self.operator} needs at least one condition")

    def render(self) -> dict[str, Any]:
        return {self.operator: [condition.render() for condition in self.conditions]}

    def describe(self) -> str:
        joiner = f" {self.operator.lower()} "
        return joiner.join(condition.describe() for condition in self.conditions)
