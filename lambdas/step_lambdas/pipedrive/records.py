"""The record contract: one warehouse row -> one Deal v2 request body, or clear reasons why not.

A record is a JSON object with ``external_id`` (string, required), ``title`` (string,
required), any Deal v2 field below, ``custom_fields`` (by 40-hex key or by field name as
listed by ``GET /api/v1/dealFields``) and optionally ``deal_id``. Each bad record fails on
its own with every reason found (field, expected, got); the others go on.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from step_lambdas.contract.checks import is_int as _is_int
from step_lambdas.contract.checks import is_number as _is_number

_INT = "integer"
_NUMBER = "number"
# Pipedrive refuses longer text with HTTP 400: a deal title ('"title" length must be less than
# or equal to 255 characters long') and the short text field types ("up to 255 characters" in
# the dealFields docs; "text" holds up to 65k and is left to the server). Counted in code
# points, never more than Pipedrive's count: what passes may still be refused, never the reverse.
MAX_CHARACTERS = 255
LIMITED_DEAL_FIELDS = frozenset({"title"})
LIMITED_CUSTOM_TYPES = frozenset({"varchar", "varchar_auto", "phone"})


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _nullable(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


# Deal v2 writable fields: name -> (check, what we tell the user was expected).
# v2 is strict (no string-to-number coercion, booleans only true/false), so are we.
DEAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "title": (lambda v: isinstance(v, str) and v.strip() != "", "non-empty string"),
    "value": (_is_number, _NUMBER),
    "currency": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Z]{3}", v) is not None,
                 "3-letter currency code like EUR"),
    "status": (lambda v: v in ("open", "won", "lost"), "one of open, won, lost"),
    "stage_id": (_is_int, _INT),
    "pipeline_id": (_is_int, _INT),
    "owner_id": (_is_int, _INT),
    "person_id": (_nullable(_is_int), "integer or null"),
    "org_id": (_nullable(_is_int), "integer or null"),
    "visible_to": (_is_int, _INT),
    "probability": (_nullable(_is_number), "number or null"),
    "expected_close_date": (_nullable(_is_date), "date YYYY-MM-DD or null"),
    "lost_reason": (_nullable(lambda v: isinstance(v, str)), "string or null"),
    "label_ids": (lambda v: isinstance(v, list) and all(_is_int(x) for x in v), "list of integers"),
    "add_time": (_is_rfc3339, "RFC 3339 timestamp"),
    "close_time": (_nullable(_is_rfc3339), "RFC 3339 timestamp or null"),
    "won_time": (_nullable(_is_rfc3339), "RFC 3339 timestamp or null"),
    "lost_time": (_nullable(_is_rfc3339), "RFC 3339 timestamp or null"),
    "is_deleted": (lambda v: isinstance(v, bool), "true or false"),
    "is_archived": (lambda v: isinstance(v, bool), "true or false"),
}

# Pipedrive custom field types -> value check. Types not listed here are passed through
# unchecked and left to the server (it answers 400, which fails that record only).
CUSTOM_FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "varchar": (lambda v: isinstance(v, str), "string"),
    "varchar_auto": (lambda v: isinstance(v, str), "string"),
    "text": (lambda v: isinstance(v, str), "string"),
    "phone": (lambda v: isinstance(v, str), "string"),
    "address": (lambda v: isinstance(v, (str, dict)), "string or address object"),
    "double": (_is_number, _NUMBER),
    "monetary": (lambda v: _is_number(v) or isinstance(v, dict), "number or {value, currency}"),
    "int": (_is_int, _INT),
    "date": (_is_date, "date YYYY-MM-DD"),
    "enum": (_is_int, "option id (integer)"),
    "set": (lambda v: isinstance(v, list) and all(_is_int(x) for x in v), "list of option ids"),
    "user": (_is_int, "user id (integer)"),
    "org": (_is_int, "organization id (integer)"),
    "people": (_is_int, "person id (integer)"),
}

_HEX_KEY = re.compile(r"[0-9a-f]{40}")
RESERVED = ("external_id", "deal_id", "custom_fields")


@dataclass(frozen=True)
class FieldError:
    """One reason a record was refused: which field, what was expected, what we got."""

    field: str
    expected: str
    got: str

    def __str__(self) -> str:
        return printable(f"{self.field}: expected {self.expected}, got {self.got}")


def printable(text: str) -> str:
    """``text`` with code points UTF-8 cannot encode written as ``\\udxxx``: safe to log and store."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class CustomField:
    key: str
    name: str
    field_type: str


class FieldCatalog:
    """Custom deal fields as listed by ``GET /api/v1/dealFields``: resolve names and types."""

    def __init__(self, fields: Iterable[CustomField]) -> None:
        self.by_key: dict[str, CustomField] = {}
        self.by_name: dict[str, CustomField] = {}
        for f in fields:
            self.by_key[f.key] = f
            self.by_name.setdefault(f.name.casefold(), f)

    @classmethod
    def from_deal_fields(cls, deal_fields: Iterable[Mapping[str, Any]]) -> "FieldCatalog":
        """Keep only custom fields (40-hex keys); standard fields are validated by DEAL_FIELDS."""
        return cls(
            CustomField(str(f["key"]), str(f.get("name", "")), str(f.get("field_type", "")))
            for f in deal_fields
            if isinstance(f.get("key"), str) and _HEX_KEY.fullmatch(f["key"])
        )

    def resolve(self, key_or_name: str) -> CustomField | None:
        return self.by_key.get(key_or_name) or self.by_name.get(key_or_name.casefold())


@dataclass(frozen=True)
class UnreadableRecord:
    """Stands in for an input line that is not JSON, so it fails in place with its reason."""

    reason: str


@dataclass(frozen=True)
class DealRecord:
    """A record that passed the contract: the exact v2 body to send and its content hash."""

    index: int
    external_id: str
    body: dict[str, Any]
    content_hash: str
    deal_id: int | None = None


@dataclass(frozen=True)
class InvalidRecord:
    index: int
    external_id: str | None
    errors: tuple[FieldError, ...] = field(default_factory=tuple)

    @property
    def reasons(self) -> list[str]:
        return [str(e) for e in self.errors]


def _describe(value: Any) -> str:
    """The value as the user should see it in a reason: type and JSON text (ASCII), cut at 60."""
    if value is None:
        return "null"
    text = json.dumps(value, default=str)  # ASCII: a lone surrogate shows as its \\u escape
    kind = type(value).__name__
    if isinstance(value, str) and len(value) > MAX_CHARACTERS:
        return f"{kind} of {len(value)} characters {text[:60]}..."
    return f"{kind} {text[:60]}"


UTF8_TEXT = "text encodable as UTF-8"


def _lone_surrogate(value: Any) -> str | None:
    """What ``value`` is when it holds a lone surrogate (UTF-8 cannot encode it), else None.

    Parsing JSON that carries an unpaired ``\\ud83d`` escape (half an emoji; JSON allows it)
    gives such a string; one in a record would otherwise fail the whole export when encoded.
    """
    text = value if isinstance(value, str) else (
        json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (Mapping, list)) else None)
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"{_describe(value)} with a lone surrogate U+{ord(text[error.start]):04X}"
    return None


def content_hash(body: Mapping[str, Any]) -> str:
    """Stable hash of what we would send: unchanged hash => nothing to update."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RecordValidator:
    """Turn raw records into :class:`DealRecord` or :class:`InvalidRecord`.

    ``external_id_field`` is the custom field (key or name) that stores ``external_id``.
    """

    def __init__(self, catalog: FieldCatalog, external_id_field: str) -> None:
        resolved = catalog.resolve(external_id_field)
        if resolved is None:
            known = ", ".join(sorted(f.name for f in catalog.by_key.values())) or "none"
            raise ValueError(
                f"external id field {external_id_field!r} is not a custom deal field "
                f"(known custom fields: {known})"
            )
        self.catalog = catalog
        self.external_id_key = resolved.key

    def validate(self, raw: Any, index: int) -> DealRecord | InvalidRecord:
        if isinstance(raw, UnreadableRecord):
            return InvalidRecord(index, None, (FieldError("record", "a JSON object on one line", raw.reason),))
        if not isinstance(raw, Mapping):
            return InvalidRecord(index, None, (FieldError("record", "JSON object", _describe(raw)),))
        errors: list[FieldError] = [
            FieldError(str(name), UTF8_TEXT, got) for name, value in raw.items()
            if name != "custom_fields" and (got := _lone_surrogate(value))
        ]
        external_id = raw.get("external_id")
        if not isinstance(external_id, str) or not external_id.strip():
            errors.append(FieldError("external_id", "non-empty string", _describe(external_id)))
            external_id = None if not isinstance(external_id, (str, int)) else str(external_id)
        if "title" not in raw:
            errors.append(FieldError("title", "non-empty string", "missing"))

        deal_id = raw.get("deal_id")
        if deal_id is not None and not (_is_int(deal_id) and deal_id > 0):
            errors.append(FieldError("deal_id", "positive integer or null", _describe(deal_id)))

        body: dict[str, Any] = {}
        for name, value in raw.items():
            if name in RESERVED:
                continue
            rule = DEAL_FIELDS.get(name)
            if rule is None:
                errors.append(FieldError(name, "a Deal v2 field or custom_fields entry", "unknown field"))
            elif not rule[0](value):
                errors.append(FieldError(name, rule[1], _describe(value)))
            elif name in LIMITED_DEAL_FIELDS and len(value) > MAX_CHARACTERS:
                errors.append(FieldError(name, f"at most {MAX_CHARACTERS} characters", _describe(value)))
            else:
                body[name] = value

        custom: dict[str, Any] = {}
        raw_custom = raw.get("custom_fields", {})
        if not isinstance(raw_custom, Mapping):
            errors.append(FieldError("custom_fields", "object of key-or-name -> value", _describe(raw_custom)))
            raw_custom = {}
        for key_or_name, value in raw_custom.items():
            where = f"custom_fields.{key_or_name}"
            if got := _lone_surrogate(value):
                errors.append(FieldError(where, UTF8_TEXT, got))
                continue
            resolved = self.catalog.resolve(str(key_or_name))
            if resolved is None:
                errors.append(FieldError(where, "a custom deal field key or name", "unknown custom field"))
                continue
            if resolved.key == self.external_id_key:
                errors.append(FieldError(where, "no value (the external id field is set from external_id)",
                                         _describe(value)))
                continue
            rule = CUSTOM_FIELD_CHECKS.get(resolved.field_type)
            if value is not None and rule is not None and not rule[0](value):
                errors.append(FieldError(where, f"{rule[1]} ({resolved.field_type} field)", _describe(value)))
                continue
            if resolved.field_type in LIMITED_CUSTOM_TYPES and isinstance(value, str) and len(value) > MAX_CHARACTERS:
                errors.append(FieldError(where, f"at most {MAX_CHARACTERS} characters ({resolved.field_type} field)",
                                         _describe(value)))
                continue
            if resolved.key in custom:
                errors.append(FieldError(where, "each custom field once", "given twice (by key and by name)"))
                continue
            custom[resolved.key] = value

        if errors:
            return InvalidRecord(index, None if external_id is None else printable(external_id), tuple(errors))
        custom[self.external_id_key] = external_id
        body["custom_fields"] = dict(sorted(custom.items()))
        return DealRecord(index, external_id, body, content_hash(body), deal_id)
