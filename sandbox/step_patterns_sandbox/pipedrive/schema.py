"""The deal schema: standard v2 deal fields, custom fields, and strict v2 input validation."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

from step_lambdas.contract.checks import is_int as _int
from step_lambdas.contract.checks import is_number as _number

from .settings import field_key

SEARCHABLE_TYPES = ("address", "varchar", "text", "varchar_auto", "double", "monetary", "phone")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_VARCHAR_MAX = 255  # Pipedrive's varchar limit; text fields hold more


class DealInputError(ValueError):
    """A request body or parameter Pipedrive would refuse with 400; the message says where."""


@dataclass(frozen=True)
class CustomField:
    name: str
    field_type: str
    key: str


def _date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


# Standard writable deal fields: name -> (check, what the check wants, nullable).
_STANDARD: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "title": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", False),
    "value": (_number, "a number", False),
    "currency": (lambda v: isinstance(v, str) and bool(_CURRENCY.match(v)), "a 3-letter ISO currency code", False),
    "status": (lambda v: v in ("open", "won", "lost"), "one of open, won, lost", False),
    "stage_id": (lambda v: _int(v) and v > 0, "a positive integer", False),
    "owner_id": (lambda v: _int(v) and v > 0, "a positive integer", False),
    "pipeline_id": (lambda v: _int(v) and v > 0, "a positive integer", False),
    "person_id": (lambda v: _int(v) and v > 0, "a positive integer", True),
    "org_id": (lambda v: _int(v) and v > 0, "a positive integer", True),
    "expected_close_date": (_date, "a date YYYY-MM-DD", True),
}

CREATE_DEFAULTS = {
    "value": 0, "currency": "USD", "status": "open", "stage_id": 1, "owner_id": 1,
    "pipeline_id": 1, "person_id": None, "org_id": None, "expected_close_date": None,
}

_CUSTOM_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "varchar": (lambda v: isinstance(v, str) and len(v) <= _VARCHAR_MAX, f"a string of at most {_VARCHAR_MAX} characters"),
    "varchar_auto": (lambda v: isinstance(v, str) and len(v) <= _VARCHAR_MAX, f"a string of at most {_VARCHAR_MAX} characters"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "phone": (lambda v: isinstance(v, str), "a string"),
    "address": (lambda v: isinstance(v, str), "a string"),
    "double": (_number, "a number"),
    "monetary": (
        lambda v: isinstance(v, dict) and set(v) == {"value", "currency"} and _number(v["value"])
        and isinstance(v["currency"], str) and bool(_CURRENCY.match(v["currency"])),
        'an object {"value": number, "currency": "3-letter code"}',
    ),
    "date": (_date, "a date YYYY-MM-DD"),
}


class DealSchema:
    """Custom fields of one sandbox and the validation of deal bodies against them."""

    def __init__(self, custom_fields: tuple[tuple[str, str], ...]):
        self.custom = tuple(CustomField(name, ftype, field_key(name)) for name, ftype in custom_fields)
        self.by_key = {f.key: f for f in self.custom}

    def key_of(self, name: str) -> str:
        for f in self.custom:
            if f.name == name:
                return f.key
        raise KeyError(f"no custom deal field named {name!r}; known: {[f.name for f in self.custom]}")

    def validate_create(self, body: Any) -> dict[str, Any]:
        """Full field set of a new deal (defaults filled in); title is required."""
        fields = self._validate(body)
        if "title" not in fields:
            raise DealInputError("Validation failed: title: Parameter 'title' is required")
        custom = {f.key: None for f in self.custom}
        custom.update(fields.pop("custom_fields", {}))
        return {**CREATE_DEFAULTS, **fields, "custom_fields": custom}

    def validate_update(self, body: Any) -> dict[str, Any]:
        """Only the fields given (PATCH semantics); at least one is required."""
        fields = self._validate(body)
        if not fields:
            raise DealInputError("Validation failed: body: at least one field to update is required")
        return fields

    def parse_custom_field_keys(self, raw: str | None) -> tuple[str, ...] | None:
        """The `custom_fields=k1,k2` query parameter: at most 15 known keys (None = all)."""
        if raw is None:
            return None
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        if len(keys) > 15:
            raise DealInputError(f"Validation failed: custom_fields: at most 15 keys are allowed, got {len(keys)}")
        unknown = [k for k in keys if k not in self.by_key]
        if unknown:
            raise DealInputError(f"Validation failed: custom_fields: unknown custom field keys {unknown}")
        return keys

    def _validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise DealInputError("Validation failed: body: expected a JSON object")
        unknown = sorted(set(body) - set(_STANDARD) - {"custom_fields"})
        if unknown:
            # Real v2 ignores some extras; refusing them keeps client typos from being lost.
            raise DealInputError(f"Validation failed: body: unknown or read-only deal fields {unknown}")
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name == "custom_fields":
                out[name] = self._validate_custom(value)
                continue
            check, wanted, nullable = _STANDARD[name]
            if value is None and nullable:
                out[name] = None
            elif value is None or not check(value):
                raise DealInputError(f"Validation failed: {name}: Parameter '{name}' must be {wanted}, got {value!r}")
            else:
                out[name] = value
        return out

    def _validate_custom(self, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise DealInputError("Validation failed: custom_fields: expected an object of {field key: value}")
        out = {}
        for key, value in values.items():
            spec = self.by_key.get(key)
            if spec is None:
                raise DealInputError(f"Validation failed: custom_fields: unknown custom field key '{key}'")
            check, wanted = _CUSTOM_CHECKS[spec.field_type]
            if value is not None and not check(value):
                raise DealInputError(
                    f"Validation failed: custom_fields.{key} ({spec.name}, {spec.field_type}): "
                    f"must be {wanted} or null, got {value!r}"
                )
            out[key] = value
        return out


def searchable_text(field_type: str, value: Any) -> str | None:
    """The text a search term is compared with, or None when the field is not searchable."""
    if value is None or field_type not in SEARCHABLE_TYPES:
        return None
    if field_type == "monetary":
        value = value["value"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
