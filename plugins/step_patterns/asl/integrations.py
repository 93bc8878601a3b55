"""Service integrations shared by the builders: Lambda invoke, SDK calls, retries, error Fails."""

from __future__ import annotations

from dataclasses import dataclass

from .paths import Intrinsic, JsonPath
from .states import Catch, Fail, Retry

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

# Transient Lambda service errors AWS recommends retrying for every Lambda Task.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)

# Transient Redshift Data API errors, named as Step Functions names SDK errors
# (PascalCase service name + exception name).
REDSHIFT_DATA_TRANSIENT_ERRORS = (
    "RedshiftData.ThrottlingException",
    "RedshiftData.InternalServerException",
    "RedshiftData.ActiveStatementsExceededException",
    "RedshiftData.ActiveSessionsExceededException",
    "RedshiftData.ActiveWaitingRequestsExceededException",
)


def sdk_resource(service: str, action: str) -> str:
    """``arn:aws:states:::aws-sdk:<service>:<action>`` (service as Step Functions spells it)."""
    return f"arn:aws:states:::aws-sdk:{service}:{action}"


@dataclass(frozen=True)
class RetryPolicy:
    """How every Task retries transient errors: exponential backoff with full jitter."""

    interval_seconds: int = 2
    max_attempts: int = 5
    backoff_rate: float = 2.0
    max_delay_seconds: int = 30

    def __post_init__(self) -> None:
        # Validate once, here, with the settings' own names in the messages.
        if not isinstance(self.max_attempts, int) or not 0 <= self.max_attempts <= 20:
            raise ValueError(f"retry max_attempts must be an integer in [0, 20], got {self.max_attempts!r}")
        if not isinstance(self.interval_seconds, int) or self.interval_seconds < 1:
            raise ValueError(f"retry interval_seconds must be an integer >= 1, got {self.interval_seconds!r}")
        if self.backoff_rate < 1.0:
            raise ValueError(f"retry backoff_rate must be >= 1.0, got {self.backoff_rate!r}")
        if not isinstance(self.max_delay_seconds, int) or self.max_delay_seconds < self.interval_seconds:
            raise ValueError(
                f"retry max_delay_seconds ({self.max_delay_seconds!r}) must be an integer >= "
                f"interval_seconds ({self.interval_seconds})"
            )

    def retry(self, errors: tuple[str, ...]) -> Retry:
        return Retry(
            errors=errors,
            interval_seconds=self.interval_seconds,
            max_attempts=self.max_attempts,
            backoff_rate=self.backoff_rate,
            max_delay_seconds=self.max_delay_seconds,
            jitter="FULL",
        )


def catch_all(fail_state: str) -> Catch:
    """Catch any error after retries and go to ``fail_state``, keeping it at ``$.error``."""
    return Catch(errors=("States.ALL",), next=fail_state, result_path="$.error")


def caught_error_fail(name: str, what: str) -> Fail:
    """A Fail named after what failed; its Cause keeps the caught error's name and cause."""
    return Fail(
        name=name,
        comment=f"{what} failed after retries; the Cause carries the original error and cause.",
        error=name,
        cause=Intrinsic("States.Format('{}: {}', $.error.Error, $.error.Cause)"),
    )


def lambda_payload_selector(fields: tuple[str, ...]) -> dict[str, JsonPath]:
    """A ResultSelector that keeps exactly ``fields`` of the Lambda's returned payload.

    Naming each field enforces the Lambda contract: a missing field fails the state loudly
    instead of passing a half-formed result downstream.
    """
    return {name: JsonPath(f"$.Payload.{name}") for name in fields}
