"""Engine values -> the Data API's typed ``Field`` JSON and ``ColumnMetadata``.

Redshift answers ``{"longValue"}`` for int2/int4/int8, ``{"doubleValue"}`` for
float4/float8, ``{"booleanValue"}`` for bool, ``{"isNull": true}`` for NULL and
``{"stringValue"}`` for everything else (numeric/decimal as their exact text, dates and
times in ISO form with a space separator, SUPER/JSON as JSON text, VARBYTE as hex).
Records are produced directly as JSON text because a page is written to disk once and
served many times: building millions of dicts to dump them again would double the cost.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring as _json_str  # C-accelerated string escaping
from typing import Any

LONG, DOUBLE, BOOL, STRING = "long", "double", "bool", "string"

# Redshift/PostgreSQL type name -> (Field kind, precision, signed) for ColumnMetadata.
_TYPE_INFO: dict[str, tuple[str, int, bool]] = {
    "int2": (LONG, 5, True),
    "int4": (LONG, 10, True),
    "int8": (LONG, 19, True),
    "float4": (DOUBLE, 8, True),
    "float8": (DOUBLE, 17, True),
    "bool": (BOOL, 1, False),
    "numeric": (STRING, 38, True),
}


@dataclass(frozen=True)
class Column:
    """One result column, already named with Redshift's type vocabulary."""

    name: str
    type_name: str
    precision: int | None = None
    scale: int | None = None

    @property
    def kind(self) -> str:
        return _TYPE_INFO.get(self.type_name, (STRING, 0, False))[0]

    def metadata(self) -> dict[str, Any]:
        kind, default_precision, signed = _TYPE_INFO.get(self.type_name, (STRING, 0, False))
        return {
            "isCaseSensitive": kind == STRING and self.type_name in ("varchar", "bpchar", "text", "char"),
            "isCurrency": False,
            "isSigned": signed,
            "label": self.name,
            "length": 0,
            "name": self.name,
            "nullable": 1,
            "precision": self.precision if self.precision is not None else default_precision,
            "scale": self.scale or 0,
            "schemaName": "",
            "tableName": "",
            "typeName": self.type_name,
        }


def _text(value: Any) -> str:
    """Redshift's text form of a value served as ``stringValue``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
        # Redshift prints a zero-minute offset as +00, not +00:00.
        return text[:-3] if value.tzinfo is not None and text.endswith(":00") and text[-6] in "+-" else text
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _long(value: Any) -> str:
    return '{"longValue":%d}' % value


def _double(value: Any) -> str:
    # json.dumps keeps NaN/Infinity as tokens Python's (and botocore's) JSON reader accepts.
    return '{"doubleValue":' + json.dumps(float(value)) + "}"


def _bool(value: Any) -> str:
    return '{"booleanValue":true}' if value else '{"booleanValue":false}'


def _string(value: Any) -> str:
    return '{"stringValue":' + _json_str(_text(value)) + "}"


_NULL = '{"isNull":true}'
_ENCODERS: dict[str, Callable[[Any], str]] = {LONG: _long, DOUBLE: _double, BOOL: _bool, STRING: _string}


def row_encoder(columns: Sequence[Column]) -> Callable[[Sequence[Any]], str]:
    """Return a function turning one engine row into the JSON text of a Data API record."""
    encoders = [_ENCODERS[c.kind] for c in columns]

    def encode(row: Sequence[Any]) -> str:
        return "[" + ",".join(_NULL if v is None else enc(v) for enc, v in zip(encoders, row)) + "]"

    return encode
