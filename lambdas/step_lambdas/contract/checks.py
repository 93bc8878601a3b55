"""The value checks both sides share: each rule once, each message naming the value and what it should be.

Every check takes the name the caller's user knows the value by (an operator parameter, an
execution input field, a builder setting) and raises ``ValueError("<name> must be ..., got
<value>")``, so no caller renames another's message. The Airflow operators run them on
literal values in ``__init__`` (parse time) and on templated ones after rendering
(:func:`is_templated`), the ASL builders on their settings, the Lambdas on their events.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any, Sequence

# Step Functions' limits.
MAX_EXECUTION_SECONDS = 31_536_000  # a Standard execution lasts at most a year
MAP_MODES = ("DISTRIBUTED", "INLINE")
MAX_MAP_CONCURRENCY = {"DISTRIBUTED": 10_000, "INLINE": 40}


def is_int(value: Any) -> bool:
    """An int but not a bool (``True`` is an int to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_templated(value: Any) -> bool:
    """A string Airflow renders with Jinja before ``execute``: checked then, not at parse time."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def integer(name: str, value: Any, minimum: int = 1, maximum: int | None = None, *, says: str | None = None) -> int:
    """``value`` if it is an integer in ``[minimum, maximum]``; ValueError naming ``name`` otherwise
    (``says``: what it must be, in the caller's words, instead of the bounds)."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {says or 'an integer ' + bounds}, got {value!r}")
    return value


def count(name: str, value: Any) -> int:
    """A count or a position: an integer >= 0."""
    return integer(name, value, 0, says="a non-negative integer")


def optional_integer(name: str, value: Any, *, none: str) -> int | None:
    """A positive integer or None (``none`` says how the caller spells it and what it stands for)."""
    if value is not None and (not is_int(value) or value < 1):
        raise ValueError(f"{name} must be a positive integer or {none}, got {value!r}")
    return value


def number(name: str, value: Any, minimum: float = 0.0, maximum: float | None = None, *,
           exclusive: bool = False, says: str | None = None) -> float:
    """``value`` if it is a finite number ``>= minimum`` (``> minimum`` when ``exclusive``) and ``<= maximum``."""
    low_ok = is_number(value) and (value > minimum if exclusive else value >= minimum)
    if not low_ok or not math.isfinite(value) or (maximum is not None and value > maximum):
        bounds = f"{'>' if exclusive else '>='} {minimum:g}" if maximum is None else f"in [{minimum:g}, {maximum:g}]"
        raise ValueError(f"{name} must be {says or 'a number ' + bounds}, got {value!r}")
    return value


def one_of(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def text(name: str, value: Any, *, what: str = "a non-empty string") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def execution_timeout(name: str, value: Any) -> int:
    """A state machine's ``TimeoutSeconds``: the one ceiling of a Standard execution."""
    return integer(name, value, 1, MAX_EXECUTION_SECONDS)


def map_mode(name: str, value: Any) -> str:
    return one_of(name, value, MAP_MODES)


def map_concurrency(name: str, value: Any, mode: str) -> int:
    """Concurrent Map iterations: at least 1, at most Step Functions' limit of the Map mode."""
    limit = MAX_MAP_CONCURRENCY[map_mode("map_mode", mode)]
    return integer(name, value, 1, limit, says=f"an integer in [1, {limit}] with map_mode={mode!r} (Step Functions' limit)")


def field_mapping(name: str, value: Any) -> dict[str, str]:
    """Column -> Deal field, both text. Text holding such an object is accepted too, as JSON
    (``{{ var.value.mapping }}``) or as Python prints a dict (``{{ var.json.mapping }}``: Jinja
    renders to text unless the DAG renders native objects)."""
    mapping = value
    if isinstance(value, str):
        try:
            mapping = json.loads(value)
        except ValueError:
            try:  # literal_eval reads literals only, never runs code
                mapping = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                mapping = value
    if mapping is None:
        return {}
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in mapping.items()
    ):
        raise ValueError(f"{name} must map column names to Deal field names (text to text), got {value!r}")
    return mapping
