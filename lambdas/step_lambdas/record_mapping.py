"""Query columns -> records of the Pipedrive record contract, and the contract check the
query executor can make without talking to Pipedrive.

``field_mapping`` maps a result column to where its value goes in the record::

    {"lead_id": "external_id", "company": "title", "amount": "value",
     "region": "Region", "source": "custom_fields.Lead source"}

A target that is ``external_id``, ``deal_id`` or a Deal v2 field goes at the top level;
``custom_fields.<name or key>`` or any other name goes under ``custom_fields``. Columns not
in the mapping keep their own name, which must then be a Deal field, ``external_id``,
``deal_id`` or ``custom_fields`` (a SUPER object). A mapping that cannot work for any row
(unknown column, unmapped extra column, two columns on one field, no external_id/title) is
refused up front with :class:`FieldMappingError`, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from step_lambdas.contract.checks import is_int
from step_lambdas.pipedrive.records import DEAL_FIELDS, CustomField, FieldCatalog, RecordValidator

CUSTOM_PREFIX = "custom_fields."
TOP_LEVEL = frozenset(DEAL_FIELDS) | {"external_id", "deal_id"}


class FieldMappingError(ValueError):
    """The column-to-field mapping does not fit the query's columns."""


@dataclass(frozen=True)
class _Slot:
    position: int  # column position in the result row
    field: str
    custom: bool


def _target(name: str) -> tuple[str, bool]:
    if name.startswith(CUSTOM_PREFIX):
        return name[len(CUSTOM_PREFIX):], True
    return name, name not in TOP_LEVEL


@dataclass(frozen=True)
class RecordMapping:
    """How one result row becomes one contract record (built once per result)."""

    slots: tuple[_Slot, ...]
    custom_object: int | None  # position of a ``custom_fields`` SUPER column, if any

    @classmethod
    def build(cls, columns: Sequence[str], field_mapping: Mapping[str, str] | None) -> "RecordMapping":
        field_mapping = dict(field_mapping or {})
        problems: list[str] = []
        missing = [c for c in field_mapping if c not in columns]
        if missing:
            problems.append(f"mapped columns not in the query result: {', '.join(map(repr, missing))} "
                            f"(columns: {', '.join(columns)})")
        slots: list[_Slot] = []
        custom_object = None
        seen: dict[tuple[str, bool], str] = {}
        unmapped: list[str] = []
        for position, column in enumerate(columns):
            target = field_mapping.get(column)
            if target is None:
                if column == "custom_fields":
                    custom_object = position
                    continue
                if column not in TOP_LEVEL:
                    unmapped.append(column)
                    continue
                target = column
            if not isinstance(target, str) or not target.strip() or target == CUSTOM_PREFIX:
                problems.append(f"column {column!r} maps to {target!r}: expected a field name")
                continue
            name, custom = _target(target)
            if (name, custom) in seen:
                problems.append(f"columns {seen[(name, custom)]!r} and {column!r} both map to {target!r}")
                continue
            seen[(name, custom)] = column
            slots.append(_Slot(position, name, custom))
        if unmapped:
            problems.append(
                f"columns {', '.join(map(repr, unmapped))} are neither mapped nor named like a Deal field: "
                "map them in target.field_mapping (e.g. to a custom field name) or leave them out of the SELECT"
            )
        for required in ("external_id", "title"):
            if (required, False) not in seen:
                problems.append(f"no column gives {required!r}: name a column {required} or map one to it")
        if problems:
            raise FieldMappingError("field mapping: " + "; ".join(problems))
        return cls(tuple(slots), custom_object)

    def record(self, values: Sequence[Any]) -> dict[str, Any]:
        """The contract record of one row. An integer external id is used as its text."""
        record: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        if self.custom_object is not None:
            given = values[self.custom_object]
            custom = dict(given) if isinstance(given, Mapping) else ({} if given is None else given)
        for slot in self.slots:
            value = values[slot.position]
            if slot.custom:
                if isinstance(custom, dict):
                    custom[slot.field] = value
            else:
                record[slot.field] = value
        external_id = record.get("external_id")
        if is_int(external_id):
            record["external_id"] = str(external_id)
        if custom or self.custom_object is not None:
            record["custom_fields"] = custom  # a non-object SUPER value is left for the contract to refuse
        return record


class _AnyCustomField(FieldCatalog):
    """Adapter: a catalog that knows every custom field name, with an unchecked type.

    The query executor has no Pipedrive token, so it cannot list ``dealFields``. With this
    catalog :class:`RecordValidator` checks all it can offline (external_id, title, Deal
    field types, deal_id, the external id field not set twice); the chunk syncer checks
    custom field names and types again against the real catalog.
    """

    def __init__(self) -> None:
        super().__init__(())

    def resolve(self, key_or_name: str) -> CustomField | None:
        return CustomField(key=key_or_name, name=key_or_name, field_type="")


class ContractCheck:
    """Reasons a record breaks the record contract (empty when it keeps it)."""

    def __init__(self, external_id_field: str) -> None:
        self._validator = RecordValidator(_AnyCustomField(), external_id_field)

    def reasons(self, record: Any, index: int) -> list[str]:
        result = self._validator.validate(record, index)
        return getattr(result, "reasons", [])
