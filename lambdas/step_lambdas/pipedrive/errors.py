"""Errors of the Pipedrive client. ``StopRun`` subclasses mean: stop every sender now."""

from __future__ import annotations


class PipedriveError(Exception):
    """Base class of every error raised by the Pipedrive client."""


class PipedriveRequestError(PipedriveError):
    """A 4xx answer that retrying cannot fix (validation error, not found, ...)."""

    def __init__(self, method: str, path: str, status: int, error: str, error_info: str = "") -> None:
        self.method, self.path, self.status = method, path, status
        self.error, self.error_info = error, error_info
        detail = f"{error} ({error_info})" if error_info else error
        super().__init__(f"{method} {path} -> HTTP {status}: {detail}")


class RetriesExhausted(PipedriveError):
    """Transient failures (5xx, timeouts, resets, 429s) outlasted the retry budget."""


class AmbiguousWriteError(PipedriveError):
    """A create may or may not have been applied (timeout/reset/5xx after sending).

    Blindly retrying could create a duplicate: the caller must look the deal up first.
    """


class DeadlineReached(PipedriveError):
    """The caller's time budget ends before this request could be sent or retried."""


class SendingHalted(DeadlineReached):
    """Not sent: the run is stopping (its limiter was halted) and queued requests must not go out."""


class StopRun(PipedriveError):
    """Continuing would only make things worse: every sender must stop."""


class DailyBudgetExceeded(StopRun):
    def __init__(self, retry_after_s: float | None, requests_left: str | None = None) -> None:
        self.retry_after_s = retry_after_s
        when = f"; Pipedrive says retry after {retry_after_s:.0f} s" if retry_after_s else ""
        left = f"; x-daily-requests-left={requests_left}" if requests_left is not None else ""
        super().__init__(
            "Pipedrive's daily request budget for this company is exhausted (HTTP 429 "
            f"'daily request budget exceeded'){when}{left}. Stop and rerun after the daily "
            "reset: records not processed yet are reported, nothing is lost."
        )


class BlockedByServer(StopRun):
    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            f"{method} {path} -> HTTP 403 with an HTML page: the API edge (Cloudflare) is "
            "blocking this client, usually after repeated 429s. Stop all syncs with this "
            "token, wait, and lower --rate / --concurrency before retrying."
        )


class AuthenticationFailed(StopRun):
    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            f"{method} {path} -> HTTP 401 unauthorized: the API token was refused. Check "
            "PIPEDRIVE_API_TOKEN (locally) or the Secrets Manager secret (in Lambda)."
        )
