"""Injected AWS API faults: the next N calls of one action answer an error, as an outage would.

Checked where moto authorizes every action (``BaseResponse._authenticate_and_authorize_normal_action``),
so any service and action can be made to fail without touching its model. botocore retries
throttling and 5xx answers, so an outage that outlasts those retries needs N above them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse

_original_authorize = BaseResponse._authenticate_and_authorize_normal_action


@dataclass
class ApiFault:
    remaining: int
    error_code: str = "ServiceUnavailable"
    status: int = 503


_faults: dict[tuple[str, str], ApiFault] = {}
_lock = threading.Lock()


def fail_next(service: str, action: str, times: int, error_code: str = "ServiceUnavailable",
              status: int = 503) -> None:
    """Make the next ``times`` calls of ``service`` (moto's name, e.g. ``stepfunctions``)
    ``action`` (e.g. ``DescribeExecution``) fail with ``error_code`` / HTTP ``status``."""
    with _lock:
        _faults[(service, action)] = ApiFault(times, error_code, status)


def _authorize(self, resource: str = "*") -> None:
    key = (self.service_name, self._get_action())
    with _lock:
        fault = _faults.get(key)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del _faults[key]
    if fault is not None:
        error = JsonRESTError(fault.error_code, f"injected fault: {key[1]} is unavailable")
        error.code = fault.status
        raise error
    return _original_authorize(self, resource)


def install() -> None:
    BaseResponse._authenticate_and_authorize_normal_action = _authorize


def uninstall() -> None:
    BaseResponse._authenticate_and_authorize_normal_action = _original_authorize


def clear() -> None:
    """Disarm every fault (the outage is over)."""
    with _lock:
        _faults.clear()
