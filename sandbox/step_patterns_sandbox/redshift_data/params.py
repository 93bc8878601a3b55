"""Named ``:name`` parameters of the Data API, rewritten to an engine's placeholders.

The Data API sends ``Parameters=[{"name": "id", "value": "42"}]`` next to SQL such as
``SELECT * FROM t WHERE id = :id``. Values are always strings; Redshift converts them to
the type the context needs. We do the same by binding every value as text and letting the
engine infer/cast it (DuckDB casts a prepared parameter to the type its context expects;
psycopg sends ``str`` with PostgreSQL's *unknown* type, so the server resolves it the same
way it resolves a quoted literal). Explicit casts such as ``:id::int`` work on both.

The scanner skips everything that is not code: 'string' literals (with '' escapes and
E'...' backslash escapes), "quoted identifiers", -- line comments, /* nested block
comments */ and $tag$ dollar-quoted strings $tag$; ``::`` is a cast, never a parameter.
No library does this split for the Data API's syntax (sqlparse would tokenise the whole
statement and still not know ``:name``), so it is a small hand-written scanner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

PlaceholderStyle = Literal["dollar", "pyformat"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_VALID_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ParameterError(ValueError):
    """The Parameters list does not fit the SQL (reported as a ValidationException)."""


@dataclass(frozen=True)
class BoundSql:
    """SQL rewritten for one engine, with the values in placeholder order."""

    sql: str
    values: list[object]


def _scan(sql: str):
    """Yield ``("code", text)``, ``("skip", text)`` and ``("param", name)`` pieces of ``sql``."""
    i, n, code_start = 0, len(sql), 0

    def flush(end: int):
        return ("code", sql[code_start:end]) if end > code_start else None

    while i < n:
        ch = sql[i]
        skip_end = None
        if ch == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while j < n:
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            skip_end = min(j + 1, n)
        elif ch == '"':
            j = sql.find('"', i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == '"':
                j = sql.find('"', j + 2)
            skip_end = n if j == -1 else j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            skip_end = n if j == -1 else j + 1
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            skip_end = j
        elif ch == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                close = sql.find(m.group(0), m.end())
                skip_end = n if close == -1 else close + len(m.group(0))
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            m = _NAME.match(sql, i + 1)
            if m:
                piece = flush(i)
                if piece:
                    yield piece
                yield ("param", m.group(0))
                i = code_start = m.end()
                continue
        if skip_end is not None:
            piece = flush(i)
            if piece:
                yield piece
            yield ("skip", sql[i:skip_end])
            i = code_start = skip_end
            continue
        i += 1
    piece = flush(n)
    if piece:
        yield piece


def referenced_names(sql: str) -> list[str]:
    """Names of the ``:name`` parameters used in ``sql``, in first-use order."""
    seen: dict[str, None] = {}
    for kind, text in _scan(sql):
        if kind == "param":
            seen.setdefault(text)
    return list(seen)


def parameters_by_name(parameters: list[dict] | None) -> dict[str, str]:
    """Validate the Data API ``Parameters`` list and return ``{name: value}``."""
    result: dict[str, str] = {}
    for index, item in enumerate(parameters or []):
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            raise ParameterError(f"Parameters[{index}] must be an object with 'name' and 'value'.")
        name, value = item["name"], item["value"]
        if not isinstance(name, str) or not _VALID_PARAM_NAME.match(name):
            raise ParameterError(f"Parameters[{index}].name {name!r} is not a valid parameter name.")
        if not isinstance(value, str):
            raise ParameterError(
                f"Parameters[{index}].value for '{name}' must be a string, got {type(value).__name__}."
            )
        if name in result:
            raise ParameterError(f"Parameter '{name}' is given more than once.")
        result[name] = value
    return result


def validate(sql: str, values: Mapping[str, object]) -> None:
    """Raise ParameterError when a used name has no value or a given value is not used."""
    used = referenced_names(sql)
    missing = [name for name in used if name not in values]
    if missing:
        raise ParameterError(
            "SQL uses parameter(s) with no value in Parameters: " + ", ".join(f":{n}" for n in missing)
        )
    unused = [name for name in values if name not in used]
    if unused:
        raise ParameterError("Parameters not used in the SQL: " + ", ".join(unused))


def bind(sql: str, values: Mapping[str, object] | None, style: PlaceholderStyle) -> BoundSql:
    """Rewrite ``:name`` to the engine's placeholders.

    Without values the SQL is passed through untouched, as the Data API does (a stray
    ``:name`` then fails in the engine). ``dollar`` gives ``$1`` (reused for a repeated
    name; DuckDB); ``pyformat`` gives ``%s`` per occurrence and doubles every other ``%``
    (psycopg parses the whole text, literals included, once values are passed).
    """
    if not values:
        return BoundSql(sql, [])
    validate(sql, values)
    out: list[str] = []
    ordered: list[object] = []
    positions: dict[str, int] = {}
    for kind, text in _scan(sql):
        if kind == "param":
            if style == "dollar":
                if text not in positions:
                    ordered.append(values[text])
                    positions[text] = len(ordered)
                out.append(f"${positions[text]}")
            else:
                ordered.append(values[text])
                out.append("%s")
        else:
            out.append(text.replace("%", "%%") if style == "pyformat" else text)
    return BoundSql("".join(out), ordered)
