"""Step Functions errors as a person reads them: the Lambda's message, not its JSON and stack.

Shared by the report Lambda (the cause of a failed Map) and the Airflow operators (the task's
failure line), so both say the same thing.
"""

from __future__ import annotations

import json
from typing import Any


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is its JSON error payload (our Fail states prefix it with the
    original error name, ``"Name: {...}"``): show the message, not the JSON and stack."""
    if not cause:
        return "no cause given"
    _, brace, rest = cause.partition("{")
    try:
        payload = json.loads(brace + rest) if brace else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "errorMessage" in payload:
        return f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    return cause


def caught_error_text(caught: Any) -> str:
    """``Error: message`` from a Catch's ``{"Error", "Cause"}`` (the error name said once)."""
    if not isinstance(caught, dict):
        return str(caught)
    error, cause = caught.get("Error", "error"), caught.get("Cause")
    if not cause:
        return str(error)
    text = readable_cause(cause)
    return text if text.startswith(f"{error}: ") else f"{error}: {text}"
