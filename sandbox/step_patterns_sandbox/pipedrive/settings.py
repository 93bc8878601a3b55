"""Settings of the Pipedrive sandbox and the deterministic keys of its custom fields."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from step_lambdas.contract.checks import is_int as _is_int
from step_lambdas.contract.checks import is_number as _is_number

# Token-budget cost of one call, by operation (Pipedrive's v2 figures, see
# /work/shared/reference/pipedrive.md; dealFields is a v1 list, which costs double).
DEFAULT_COSTS: Mapping[str, int] = {
    "get_deal": 1,
    "list_deals": 10,
    "search_deals": 20,
    "create_deal": 5,
    "update_deal": 5,
    "list_deal_fields": 20,
}

DEFAULT_SEARCH_LAG_S = 3.0  # a few seconds, as the real index trails; 0 = search sees writes at once

DEFAULT_CUSTOM_FIELDS = (("External ID", "varchar"), ("Lead source", "varchar"), ("Score", "double"))

# Custom field types the sandbox can store and validate (a subset of Pipedrive's).
SUPPORTED_FIELD_TYPES = ("varchar", "varchar_auto", "text", "phone", "address", "double", "monetary", "date")

# Settings that shape stored data or the listening socket: changing them needs a restart.
_RESTART_ONLY = ("db_path", "custom_fields")


def field_key(name: str) -> str:
    """Deterministic 40-hex-char key of a custom field, like Pipedrive's hash keys."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PipedriveSettings:
    """Behaviour of one sandbox; every field can be changed at runtime except db_path/custom_fields."""

    tokens: tuple[str, ...] = ("sandbox-token",)
    burst_limit: int = 20
    window_s: float = 2.0
    daily_budget: int | None = None
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    latency_ms: float = 0
    jitter_ms: float = 0
    error_rate_5xx: float = 0.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 0
    # Share of faults on POST/PATCH injected after the write was committed (the client then
    # cannot know whether its deal exists: the case that produces duplicates on blind retry).
    fault_after_write_rate: float = 0.5
    # Pipedrive's search is an index that trails its database: a created or changed deal shows
    # in /deals/search (with its new values) only this many seconds later; lists and GETs at once.
    search_lag_s: float = DEFAULT_SEARCH_LAG_S
    block_after_ignored_429: int | None = 10
    block_duration_s: float = 60.0
    db_path: str = ":memory:"
    seed: int = 0
    custom_fields: tuple[tuple[str, str], ...] = DEFAULT_CUSTOM_FIELDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "custom_fields", tuple(tuple(f) for f in self.custom_fields))
        object.__setattr__(self, "costs", {**DEFAULT_COSTS, **dict(self.costs)})
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid PipedriveSettings: " + "; ".join(problems))

    def _problems(self):
        if not self.tokens or not all(isinstance(t, str) and t for t in self.tokens):
            yield "tokens must be a non-empty sequence of non-empty strings"
        if not _is_int(self.burst_limit) or self.burst_limit < 1:
            yield f"burst_limit must be an integer >= 1, got {self.burst_limit!r}"
        if not _is_number(self.window_s) or self.window_s <= 0:
            yield f"window_s must be a number > 0, got {self.window_s!r}"
        if self.daily_budget is not None and (not _is_int(self.daily_budget) or self.daily_budget < 0):
            yield f"daily_budget must be None or an integer >= 0, got {self.daily_budget!r}"
        unknown_costs = sorted(set(self.costs) - set(DEFAULT_COSTS))
        if unknown_costs:
            yield f"costs has unknown operations {unknown_costs}; known: {sorted(DEFAULT_COSTS)}"
        for op, cost in self.costs.items():
            if not _is_int(cost) or cost < 0:
                yield f"costs[{op!r}] must be an integer >= 0, got {cost!r}"
        for name in ("latency_ms", "jitter_ms", "slow_ms", "block_duration_s", "search_lag_s"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                yield f"{name} must be a number >= 0, got {value!r}"
        for name in ("error_rate_5xx", "reset_rate", "slow_rate", "fault_after_write_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                yield f"{name} must be a probability in [0, 1], got {value!r}"
        if self.error_rate_5xx + self.reset_rate > 1:
            yield "error_rate_5xx + reset_rate must not exceed 1"
        if self.block_after_ignored_429 is not None and (
            not _is_int(self.block_after_ignored_429) or self.block_after_ignored_429 < 1
        ):
            yield f"block_after_ignored_429 must be None or an integer >= 1, got {self.block_after_ignored_429!r}"
        if not isinstance(self.db_path, str) or not self.db_path:
            yield f"db_path must be a file path or ':memory:', got {self.db_path!r}"
        if not _is_int(self.seed):
            yield f"seed must be an integer, got {self.seed!r}"
        names = [f[0] for f in self.custom_fields if len(f) == 2]
        if len(names) != len(self.custom_fields):
            yield "custom_fields must be (name, field_type) pairs"
        elif len(set(names)) != len(names):
            yield "custom_fields has duplicate names"
        for f in self.custom_fields:
            if len(f) == 2 and f[1] not in SUPPORTED_FIELD_TYPES:
                yield f"custom field {f[0]!r} has unsupported type {f[1]!r}; supported: {SUPPORTED_FIELD_TYPES}"

    def changed(self, **changes: Any) -> PipedriveSettings:
        """A copy with `changes` applied; refuses unknown names and restart-only settings."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
        frozen = sorted(k for k in changes if k in _RESTART_ONLY and changes[k] != getattr(self, k))
        if frozen:
            raise ValueError(f"settings {frozen} cannot change at runtime; restart the sandbox")
        if "costs" in changes:
            changes["costs"] = {**self.costs, **dict(changes["costs"])}
        return dataclasses.replace(self, **changes)

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-able dict, tokens replaced by their count (they are credentials)."""
        data = dataclasses.asdict(self)
        data["tokens"] = f"<{len(self.tokens)} token(s)>"
        data["costs"] = dict(self.costs)
        data["custom_fields"] = [list(f) for f in self.custom_fields]
        return data
