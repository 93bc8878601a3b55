"""Redshift Data API typed fields -> plain JSON values, guided by ``ColumnMetadata``.

GetStatementResult gives each value as one of ``longValue``, ``doubleValue``,
``booleanValue``, ``stringValue`` or ``isNull``. Numeric/decimal columns arrive as
``stringValue`` with their exact text, so the column's ``typeName`` decides: numbers become
JSON numbers (an ``int`` when the text is integral, else a ``float``, which keeps 15-17
significant digits: enough for Deal values), timestamps become RFC 3339 (what Pipedrive's
``*_time`` fields take), SUPER becomes the JSON it holds, everything else stays text.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Mapping, Sequence

Converter = Callable[[Mapping[str, Any]], Any]

NUMERIC_TYPES = frozenset({"numeric", "decimal"})
TIMESTAMP_TYPES = frozenset({"timestamp", "timestamptz"})
SUPER_TYPES = frozenset({"super"})


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _rfc3339(text: str) -> str:
    """``2024-01-05 10:00:00[+00]`` -> ``2024-01-05T10:00:00Z``; Redshift's TIMESTAMP is UTC by convention."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def _super(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # a SUPER scalar string is served as its bare text
        return text


def _string_converter(type_name: str) -> Callable[[str], Any] | None:
    if type_name in NUMERIC_TYPES:
        return _number
    if type_name in TIMESTAMP_TYPES:
        return _rfc3339
    if type_name in SUPER_TYPES:
        return _super
    return None


def converter_for(column: Mapping[str, Any]) -> Converter:
    """A function turning one typed Field of ``column`` into its JSON value (ValueError if it cannot)."""
    convert_string = _string_converter(str(column.get("typeName", "")).lower())

    def convert(field: Mapping[str, Any]) -> Any:
        if "stringValue" in field:
            text = field["stringValue"]
            return convert_string(text) if convert_string is not None else text
        if field.get("isNull"):
            return None
        for kind in ("longValue", "doubleValue", "booleanValue"):
            if kind in field:
                return field[kind]
        if "blobValue" in field:  # bytes (boto3 decodes base64): hex, as Redshift prints VARBYTE
            return bytes(field["blobValue"]).hex()
        if "arrayValue" in field:
            raise ValueError("array values are not supported; select them as SUPER")
        raise ValueError(f"unknown Data API field {sorted(field)}")

    return convert


def row_converter(columns: Sequence[Mapping[str, Any]]) -> Callable[[Sequence[Mapping[str, Any]]], list[Any]]:
    """A function turning one result record (a list of Fields) into a list of JSON values.

    A value that cannot be converted (e.g. a malformed timestamp) raises ``ValueError``
    naming its column; the caller turns that into a per-record error.
    """
    converters = [converter_for(c) for c in columns]
    names = [str(c.get("name")) for c in columns]

    def convert(record: Sequence[Mapping[str, Any]]) -> list[Any]:
        values = []
        for name, conv, field in zip(names, converters, record):
            try:
                values.append(conv(field))
            except ValueError as error:
                raise ValueError(f"column {name!r}: {error}") from None
        return values

    return convert
