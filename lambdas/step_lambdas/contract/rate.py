"""Parse a rate like ``20/2s`` (N requests per W seconds): the operators, the CLI and the Lambdas' share of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from step_lambdas.contract.checks import integer, number

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)?\s*")
FORM = "N/Ws (N requests per W seconds), e.g. 20/2s or 80/2s"


def parse_rate(text: Any, name: str = "rate") -> tuple[int, float]:
    """``"20/2s"`` -> ``(20, 2.0)``; also ``"80/2"``, ``"10/500ms"``. ValueError says why not."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be text of the form {FORM}, got {text!r}")
    match = _RATE.fullmatch(text)
    if not match:
        raise ValueError(f"{name} {text!r} is not {FORM}")
    limit, window, unit = int(match.group(1)), float(match.group(2)), match.group(3)
    window = window / 1000 if unit == "ms" else window
    if limit < 1:
        raise ValueError(f"{name} {text!r}: N must be at least 1 request")
    if window <= 0:
        raise ValueError(f"{name} {text!r}: the window W must be longer than 0 s")
    return limit, window


@dataclass(frozen=True)
class RateShare:
    """One chunk syncer's share of the rate, as the execution input carries it: ``{"requests", "per_seconds"}``."""

    requests: int
    per_seconds: float

    @classmethod
    def split(cls, text: str, syncers: int, name: str = "rate") -> "RateShare":
        """Each of ``syncers`` concurrent syncers gets an even share, so together they stay under N."""
        limit, window = parse_rate(text, name)
        if limit < syncers:
            raise ValueError(f"{name} {text} cannot be split between {syncers} concurrent chunk syncers "
                             "(each needs at least 1 request per window)")
        return cls(limit // syncers, window)

    @classmethod
    def from_event(cls, raw: Any, name: str = "target.rate") -> "RateShare":
        if not isinstance(raw, dict):
            raise ValueError(f'{name} must be {{"requests": N, "per_seconds": W}}, got {raw!r}')
        requests = integer(f"{name}.requests", raw.get("requests"))
        per_seconds = number(f"{name}.per_seconds", raw.get("per_seconds"), exclusive=True)
        return cls(requests, float(per_seconds))

    def to_event(self) -> dict[str, Any]:
        return {"requests": self.requests, "per_seconds": self.per_seconds}
