"""Pipedrive routes on top of the deal store: path -> operation, request -> (status, JSON body).

No HTTP plumbing, auth or rate limiting here (see server.py); operations are named like
the keys of PipedriveSettings.costs so the server can charge them before running them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from .schema import DealInputError, DealSchema
from .store import SORT_COLUMNS, DealStore

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
ERROR_INFO = "Please check developers.pipedrive.com"

Reply = tuple[int, dict[str, Any]]


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """Pipedrive's error envelope."""
    return {"success": False, "error": message, **extra, "error_info": ERROR_INFO,
            "data": None, "additional_data": None}


def rfc3339_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Route:
    operation: str  # cost key ("unknown" for paths Pipedrive does not have)
    writes: bool  # a fault may strike after the write is committed
    run: Callable[[dict[str, str], bytes], Reply]


_DEAL_ID = re.compile(r"^/api/v2/deals/(\d+)$")


class PipedriveApi:
    def __init__(self, store: DealStore, schema: DealSchema, clock: Callable[[], str] = rfc3339_now):
        self.store, self.schema, self.clock = store, schema, clock

    def resolve(self, method: str, path: str) -> Route:
        path = path.rstrip("/") or "/"
        if path == "/api/v2/deals":
            return self._by_method(method, GET=Route("list_deals", False, self.list_deals),
                                   POST=Route("create_deal", True, self.create_deal))
        if path == "/api/v2/deals/search":
            return self._by_method(method, GET=Route("search_deals", False, self.search_deals))
        match = _DEAL_ID.match(path)
        if match:
            deal_id = int(match.group(1))
            return self._by_method(
                method,
                GET=Route("get_deal", False, lambda q, b: self.get_deal(deal_id, q)),
                PATCH=Route("update_deal", True, lambda q, b: self.update_deal(deal_id, b)),
            )
        if path in ("/api/v1/dealFields", "/v1/dealFields"):
            return self._by_method(method, GET=Route("list_deal_fields", False, self.list_deal_fields))
        return Route("unknown", False, lambda q, b: (404, error_body(f"Unknown method {method} {path}")))

    @staticmethod
    def _by_method(method: str, **routes: Route) -> Route:
        if method in routes:
            return routes[method]
        allowed = ", ".join(routes)
        return Route("unknown", False,
                     lambda q, b: (405, error_body(f"Method {method} not allowed here; allowed: {allowed}")))

    # --- deals -------------------------------------------------------------------------

    def create_deal(self, query: dict[str, str], body: bytes) -> Reply:
        try:
            fields = self.schema.validate_create(_json(body))
        except DealInputError as exc:
            return 400, _validation_error(exc)
        return 200, {"success": True, "data": self.store.create(fields, self.clock()), "additional_data": None}

    def update_deal(self, deal_id: int, body: bytes) -> Reply:
        try:
            fields = self.schema.validate_update(_json(body))
        except DealInputError as exc:
            return 400, _validation_error(exc)
        deal = self.store.update(deal_id, fields, self.clock())
        if deal is None:
            return 404, error_body(f"Deal not found: no deal with id {deal_id}")
        return 200, {"success": True, "data": deal, "additional_data": None}

    def get_deal(self, deal_id: int, query: dict[str, str]) -> Reply:
        try:
            keys = self.schema.parse_custom_field_keys(query.get("custom_fields"))
        except DealInputError as exc:
            return 400, _validation_error(exc)
        deal = self.store.get(deal_id)
        if deal is None:
            return 404, error_body(f"Deal not found: no deal with id {deal_id}")
        return 200, {"success": True, "data": _only_custom(deal, keys), "additional_data": None}

    def list_deals(self, query: dict[str, str], body: bytes) -> Reply:
        """``GET /api/v2/deals`` with the filters of Pipedrive's SDK (``DealsApi.getDeals``, npm
        ``pipedrive`` 33.7.0): ``updated_since`` (update_time >= it) / ``updated_until`` (<),
        RFC 3339; ``sort_by`` id | update_time | add_time; ``sort_direction`` asc | desc;
        ``custom_fields`` (<= 15 keys); ``limit`` <= 500; ``cursor``. Reads the deals table, never
        the lagging search index."""
        try:
            keys = self.schema.parse_custom_field_keys(query.get("custom_fields"))
            limit = _limit(query)
            sort_by = _choice(query, "sort_by", SORT_COLUMNS, "id")
            descending = _choice(query, "sort_direction", ("asc", "desc"), "asc") == "desc"
            since = _rfc3339_param(query, "updated_since")
            until = _rfc3339_param(query, "updated_until")
            after = _decode_list_cursor(query.get("cursor"), sort_by, descending)
        except DealInputError as exc:
            return 400, _validation_error(exc)
        deals, more = self.store.select(limit, sort_by=sort_by, descending=descending, after=after,
                                        since=since, until=until)
        cursor = _encode_list_cursor(sort_by, descending, deals[-1]) if more else None
        return 200, {"success": True, "data": [_only_custom(d, keys) for d in deals],
                     "additional_data": {"next_cursor": cursor}}

    def search_deals(self, query: dict[str, str], body: bytes) -> Reply:
        try:
            term, exact, fields = self._search_params(query)
            limit = _limit(query)
            offset = _decode_cursor(query.get("cursor"), "offset")
        except DealInputError as exc:
            return 400, _validation_error(exc)
        hits, more = self.store.search(term, exact, fields, offset, limit)
        items = [{"result_score": score, "item": _search_item(deal, values)} for deal, score, values in hits]
        cursor = _encode_cursor("offset", offset + limit) if more else None
        return 200, {"success": True, "data": {"items": items}, "additional_data": {"next_cursor": cursor}}

    def _search_params(self, query: dict[str, str]) -> tuple[str, bool, list[str]]:
        exact = _boolean(query, "exact_match", default=False)
        term = query.get("term")
        if term is None:
            raise DealInputError("Validation failed: term: Parameter 'term' is required")
        if len(term.strip()) < (1 if exact else 2):
            raise DealInputError("Validation failed: term: must be at least 2 characters (1 with exact_match=true)")
        wanted = [f.strip() for f in query.get("fields", "custom_fields,notes,title").split(",") if f.strip()]
        bad = [f for f in wanted if f not in ("custom_fields", "notes", "title")]
        if bad:
            raise DealInputError(f"Validation failed: fields: unknown search fields {bad}; use custom_fields, notes, title")
        fields = ["title"] if "title" in wanted else []
        if "custom_fields" in wanted:
            fields += [f.key for f in self.schema.custom]
        return term.strip(), exact, fields  # the sandbox has no notes: searching them finds nothing

    # --- deal fields (v1) ----------------------------------------------------------------

    def list_deal_fields(self, query: dict[str, str], body: bytes) -> Reply:
        try:
            start = _int_param(query, "start", 0, 0, None)
            limit = _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        except DealInputError as exc:
            return 400, _validation_error(exc)
        catalogue = _standard_fields() + [
            {"id": 12500 + i, "key": f.key, "name": f.name, "field_type": f.field_type, "edit_flag": True,
             "mandatory_flag": False, "bulk_edit_allowed": True, "searchable_flag": True}
            for i, f in enumerate(self.schema.custom)
        ]
        page = catalogue[start:start + limit]
        more = start + limit < len(catalogue)
        return 200, {"success": True, "data": page, "additional_data": {"pagination": {
            "start": start, "limit": limit, "more_items_in_collection": more,
            **({"next_start": start + limit} if more else {})}}}


_STANDARD_FIELD_ROWS = (
    ("id", "ID", "int"), ("title", "Title", "varchar"), ("value", "Value", "monetary"),
    ("currency", "Currency", "varchar_options"), ("status", "Status", "status"),
    ("stage_id", "Stage", "stage"), ("pipeline_id", "Pipeline", "double"),
    ("user_id", "Owner", "user"), ("person_id", "Contact person", "people"),
    ("org_id", "Organization", "org"), ("expected_close_date", "Expected close date", "date"),
    ("add_time", "Deal created", "date"), ("update_time", "Update time", "date"),
)


def _standard_fields() -> list[dict[str, Any]]:
    return [{"id": 12450 + i, "key": key, "name": name, "field_type": ftype, "edit_flag": False,
             "mandatory_flag": key == "title", "bulk_edit_allowed": key not in ("id", "add_time", "update_time"),
             "searchable_flag": key == "title"}
            for i, (key, name, ftype) in enumerate(_STANDARD_FIELD_ROWS)]


def _search_item(deal: dict[str, Any], custom_values: list[str]) -> dict[str, Any]:
    return {
        "id": deal["id"], "type": "deal", "title": deal["title"], "value": deal["value"],
        "currency": deal["currency"], "status": deal["status"], "visible_to": 3,
        "owner": {"id": deal["owner_id"]},
        "stage": {"id": deal["stage_id"], "name": f"Stage {deal['stage_id']}"},
        "person": {"id": deal["person_id"], "name": None} if deal["person_id"] else None,
        "organization": {"id": deal["org_id"], "name": None, "address": None} if deal["org_id"] else None,
        "custom_fields": custom_values,
        "notes": [],
    }


def _only_custom(deal: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    if keys is None:
        return deal
    return {**deal, "custom_fields": {k: deal["custom_fields"].get(k) for k in keys}}


def _json(body: bytes) -> Any:
    if not body:
        raise DealInputError("Validation failed: body: a JSON object is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DealInputError(f"Validation failed: body: invalid JSON ({exc})") from None


def _validation_error(exc: DealInputError) -> dict[str, Any]:
    return error_body(str(exc), code="ERR_SCHEMA_VALIDATION_FAILED")


def _boolean(query: dict[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):  # v2 is strict: no 1/0
        raise DealInputError(f"Validation failed: {name}: must be true or false, got {raw!r}")
    return raw == "true"


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise DealInputError(f"Validation failed: {name}: must be an integer {bound}, got {raw!r}")
    return int(raw)


def _limit(query: dict[str, str]) -> int:
    return _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def _choice(query: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in allowed:
        raise DealInputError(f"Validation failed: {name}: must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _rfc3339_param(query: dict[str, str], name: str) -> str | None:
    """An RFC 3339 time parameter as the stored form (UTC, whole seconds); a fraction rounds
    up, so ``update_time >= since`` and ``< until`` keep their meaning against whole seconds."""
    raw = query.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", raw):
        raise DealInputError(f"Validation failed: {name}: must be an RFC 3339 time like 2025-01-01T10:20:00Z, got {raw!r}")
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except ValueError:
        raise DealInputError(f"Validation failed: {name}: not a valid time, got {raw!r}") from None
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_list_cursor(sort_by: str, descending: bool, last: dict[str, Any]) -> str:
    position = [last["id"]] if sort_by == "id" else [last[sort_by], last["id"]]
    text = json.dumps([sort_by, "desc" if descending else "asc", *position])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_list_cursor(cursor: str | None, sort_by: str, descending: bool) -> tuple | None:
    """The keyset position a list cursor holds; it must come from a list in the same order."""
    if cursor is None:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if (isinstance(found, list) and found[:2] == [sort_by, "desc" if descending else "asc"]
                and len(found) == (3 if sort_by == "id" else 4) and isinstance(found[-1], int)):
            return tuple(found[2:])
    except ValueError:
        pass
    raise DealInputError(f"Validation failed: cursor: {cursor!r} is not a cursor this list (sort_by={sort_by}, "
                         f"sort_direction={'desc' if descending else 'asc'}) returned")


def _encode_cursor(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None, kind: str) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, position = text.split(":")
        if found == kind and position.isdigit():
            return int(position)
    except ValueError:
        pass
    raise DealInputError(f"Validation failed: cursor: {cursor!r} is not a cursor this endpoint returned")
