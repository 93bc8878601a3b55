"""Parse a rate like ``20/2s`` (N requests per W seconds), shared by the CLI and Lambda config."""

from __future__ import annotations

import re

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)?\s*")


def parse_rate(text: str) -> tuple[int, float]:
    """``"20/2s"`` -> ``(20, 2.0)``; also ``"80/2"``, ``"10/500ms"``. ValueError says why not."""
    match = _RATE.fullmatch(text or "")
    if not match:
        raise ValueError(f"rate {text!r} is not N/Ws (N requests per W seconds), e.g. 20/2s or 80/2s")
    limit, window, unit = int(match.group(1)), float(match.group(2)), match.group(3)
    window = window / 1000 if unit == "ms" else window
    if limit < 1:
        raise ValueError(f"rate {text!r}: N must be at least 1 request")
    if window <= 0:
        raise ValueError(f"rate {text!r}: the window W must be longer than 0 s")
    return limit, window
