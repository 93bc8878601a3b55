"""Names Step Functions accepts, derived so the same Airflow task always gets the same one."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 80  # Step Functions' limit for state machine and execution names
_HASH_LEN = 10
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


def _safe(text: str) -> str:
    return _NOT_ALLOWED.sub("-", text).strip("-")


def stable_name(*parts: str, suffix: str = "") -> str:
    """A readable name from ``parts``, unique by a hash of all of them, at most 80 characters.

    ``stable_name("daily", "sync", "scheduled__2026-11-27T00:00:00+00:00")`` always gives the
    same name, so a retried task finds its execution instead of starting another; the hash
    keeps names that differ only in cut-off or replaced characters apart.
    """
    digest = hashlib.sha256("\x1f".join((*parts, suffix)).encode()).hexdigest()[:_HASH_LEN]
    tail = f"-{_safe(suffix)}" if suffix else ""
    room = MAX_NAME - len(tail) - _HASH_LEN - 1
    readable = "-".join(filter(None, (_safe(part) for part in parts)))[:room].rstrip("-")
    return f"{readable}-{digest}{tail}"
