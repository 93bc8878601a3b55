"""The wait-state loop: start a Redshift statement, poll it with backoff, end as it ended.

Execution input (both variants)::

    {"sql", "parameters": [{"name", "value"}], "database", "cluster_identifier",
     "workgroup_name", "secret_arn", "db_user", "statement_name"}

Execution output on success: the statement summary ``{"statement_id", "status", "error",
"result_rows", "has_result_set", "duration_ms", "duration_ns", "query"}``. The Lambda
variant fills ``duration_ms`` (``duration_ns`` null); the SDK variant fills ``duration_ns``,
Redshift's own unit, (``duration_ms`` null) because JSONPath intrinsics cannot divide.

Variants:
- ``lambda``: ``StartStatement``/``GetStatementStatus`` invoke the statement-starter and
  statement-status Lambdas (contracts in the module constants below).
- ``sdk``: Step Functions calls ``redshiftdata:executeStatement``/``describeStatement``
  itself; ``ApplyDescribeDefaults`` + ``SummarizeStatementStatus`` map Redshift's response
  onto the same summary, defaulting the fields Redshift leaves out (``Error`` is absent
  unless the statement failed).

From there on the loop (backoff, budget, status Choice, Fail states) is the same code for
both variants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from step_lambdas.contract import checks

from . import backoff
from .backoff import POLL_PATH, backoff_schedule
from .conditions import Condition
from .history import EXECUTION_EVENTS, safe_event_budget, worst_case_events
from .integrations import (
    LAMBDA_INVOKE,
    LAMBDA_SERVICE_ERRORS,
    REDSHIFT_DATA_TRANSIENT_ERRORS,
    RetryPolicy,
    catch_all,
    caught_error_fail,
    lambda_payload_selector,
    sdk_resource,
)
from .machine import StateGraph, StateMachine
from .paths import Intrinsic, JsonPath
from .states import Choice, ChoiceRule, Fail, Pass, State, Succeed, Task, Wait, WaitTime

STATEMENT_PATH = "$.statement"
RUNNING_STATUSES = ("SUBMITTED", "PICKED", "STARTED")

# State names (stable: the Airflow side and the docs refer to them).
START_STATEMENT = "StartStatement"
WAIT_FOR_STATEMENT = "WaitForStatement"
GET_STATEMENT_STATUS = "GetStatementStatus"
APPLY_DESCRIBE_DEFAULTS = "ApplyDescribeDefaults"
SUMMARIZE_STATEMENT_STATUS = "SummarizeStatementStatus"
CHECK_STATEMENT_STATUS = "CheckStatementStatus"
STATEMENT_FINISHED = "StatementFinished"
STATEMENT_FAILED = "StatementFailed"
STATEMENT_ABORTED = "StatementAborted"
UNKNOWN_STATEMENT_STATUS = "UnknownStatementStatus"
POLL_BUDGET_EXHAUSTED = "PollBudgetExhausted"
START_STATEMENT_FAILED = "StartStatementFailed"
GET_STATEMENT_STATUS_FAILED = "GetStatementStatusFailed"

# Error names of the Fail states (what DescribeExecution reports as ``error``).
ERROR_STATEMENT_FAILED = "Redshift.StatementFailed"
ERROR_STATEMENT_ABORTED = "Redshift.StatementAborted"
ERROR_UNKNOWN_STATUS = "Redshift.UnknownStatementStatus"
ERROR_POLL_BUDGET_EXHAUSTED = "StatementPollBudgetExhausted"
ERROR_START_FAILED = START_STATEMENT_FAILED
ERROR_STATUS_FAILED = GET_STATEMENT_STATUS_FAILED

# Lambda contracts: the starter gets the execution input and returns these fields; the
# status Lambda gets {"statement_id"} and returns these fields.
STARTER_RESULT_FIELDS = ("statement_id",)
STATUS_RESULT_FIELDS = ("statement_id", "status", "error", "result_rows", "has_result_set", "duration_ms", "query")

# Optional DescribeStatement fields (only Id is required in the API model) and the values
# the summary shows when Redshift leaves them out.
DESCRIBE_DEFAULTS = {"Error": None, "ResultRows": -1, "HasResultSet": False, "Duration": -1, "QueryString": None}
DESCRIBE_PATH = "$.describe"
DEFAULTS_PATH = "$.describe_defaults"

Variant = Literal["lambda", "sdk"]
SdkTarget = Literal["cluster", "workgroup"]
SdkAuth = Literal["secret_arn", "db_user", "iam"]


@dataclass(frozen=True)
class WaitLoopSettings:
    """Everything the wait-loop builder needs; validated on construction.

    ``statement_starter_arn``/``statement_status_arn`` are required by the ``lambda``
    variant. ``sdk_*`` are build-time choices of the ``sdk`` variant, because the Data API
    rejects null or empty optional fields: the cluster/workgroup, the credentials
    (``secret_arn``: SecretArn from the input; ``db_user``: DbUser from the input, cluster
    only; ``iam``: neither, the state machine role's identity), whether ``Parameters`` and
    ``StatementName`` are passed from the input.
    """

    variant: Variant = "lambda"
    statement_starter_arn: str | None = None
    statement_status_arn: str | None = None
    sdk_target: SdkTarget = "cluster"
    sdk_auth: SdkAuth = "secret_arn"
    sdk_with_parameters: bool = False
    sdk_with_statement_name: bool = False
    min_seconds: int = 2
    max_seconds: int = 60
    factor: float = 2.0
    max_polls: int = 600
    timeout_seconds: int = 36_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # What the caller's user calls the poll settings (e.g. an operator's parameter names), for
    # the error messages: (("min_seconds", "min_poll_seconds"), ...).
    names: tuple[tuple[str, str], ...] = ()
    comment: str = "Wait-state loop: run a Redshift statement through the Data API and poll it with exponential backoff."

    def __post_init__(self) -> None:
        if self.variant not in ("lambda", "sdk"):
            raise ValueError(f"variant must be 'lambda' or 'sdk', got {self.variant!r}")
        if self.variant == "lambda":
            for name in ("statement_starter_arn", "statement_status_arn"):
                value = getattr(self, name)
                if not value or not value.startswith("arn:"):
                    raise ValueError(f"the lambda variant needs {name} (a Lambda ARN), got {value!r}")
        if self.sdk_target not in ("cluster", "workgroup"):
            raise ValueError(f"sdk_target must be 'cluster' or 'workgroup', got {self.sdk_target!r}")
        if self.sdk_auth not in ("secret_arn", "db_user", "iam"):
            raise ValueError(f"sdk_auth must be 'secret_arn', 'db_user' or 'iam', got {self.sdk_auth!r}")
        if self.variant == "sdk" and self.sdk_auth == "db_user" and self.sdk_target == "workgroup":
            raise ValueError("sdk_auth='db_user' only works with a provisioned cluster, not a workgroup")
        self.schedule  # noqa: B018 - raises on bad backoff
        checks.integer(self.named("max_polls"), self.max_polls, says="an integer >= 1 (the poll budget)")
        checks.execution_timeout(self.named("timeout_seconds"), self.timeout_seconds)
        if self.timeout_seconds <= self.min_seconds:
            raise ValueError(
                f"{self.named('timeout_seconds')} ({self.timeout_seconds}) must exceed "
                f"{self.named('min_seconds')} ({self.min_seconds}): the execution would time out before its first poll"
            )

    def named(self, setting: str) -> str:
        """The name the caller's user knows ``setting`` by."""
        return dict(self.names).get(setting, setting)

    @property
    def schedule(self) -> tuple[int, ...]:
        return backoff_schedule(self.min_seconds, self.max_seconds, self.factor, dict(self.names))


@dataclass(frozen=True)
class HistoryBudget:
    """Worst-case history events of one execution of the loop."""

    fixed_events: int
    events_per_poll: int
    max_polls: int
    limit: int

    @property
    def worst_case(self) -> int:
        return self.fixed_events + self.events_per_poll * self.max_polls

    @property
    def max_safe_polls(self) -> int:
        return (self.limit - self.fixed_events) // self.events_per_poll


def build_wait_loop(settings: WaitLoopSettings) -> StateMachine:
    """Build the wait-loop machine; ValueError when its worst case could near the history cap."""
    states = _states(settings)
    budget = history_budget(settings, states)
    if budget.worst_case > budget.limit:
        raise ValueError(
            f"{settings.named('max_polls')}={settings.max_polls} can cost {budget.worst_case} history events "
            f"({budget.events_per_poll} per poll with retries), over the safe budget of {budget.limit} "
            f"(80% of the 25,000-event cap); use {settings.named('max_polls')} <= {budget.max_safe_polls} "
            f"(a larger {settings.named('max_seconds')} covers the same time in fewer polls) or fewer retry attempts"
        )
    return StateMachine(
        graph=StateGraph(start_at=START_STATEMENT, states=tuple(states)),
        comment=settings.comment,
        timeout_seconds=settings.timeout_seconds,
    )


def history_budget(settings: WaitLoopSettings, states: list[State] | None = None) -> HistoryBudget:
    """Count the events: start + init + terminal once, the loop's states once per poll."""
    states = states if states is not None else _states(settings)
    by_name = {state.name: state for state in states}
    once = [START_STATEMENT, backoff.INIT_POLL]
    per_poll = [WAIT_FOR_STATEMENT, GET_STATEMENT_STATUS, CHECK_STATEMENT_STATUS, backoff.CHECK_POLL_BUDGET, backoff.GROW_BACKOFF]
    per_poll += [name for name in (APPLY_DESCRIBE_DEFAULTS, SUMMARIZE_STATEMENT_STATUS) if name in by_name]
    terminal = max(worst_case_events(state) for state in states if isinstance(state, (Succeed, Fail)))
    return HistoryBudget(
        fixed_events=EXECUTION_EVENTS + sum(worst_case_events(by_name[name]) for name in once) + terminal,
        events_per_poll=sum(worst_case_events(by_name[name]) for name in per_poll),
        max_polls=settings.max_polls,
        limit=safe_event_budget(),
    )


def _states(settings: WaitLoopSettings) -> list[State]:
    start, status = (_lambda_tasks if settings.variant == "lambda" else _sdk_tasks)(settings)
    carry: dict = {"statement": JsonPath(STATEMENT_PATH)}
    if settings.variant == "sdk":
        carry[DEFAULTS_PATH.removeprefix("$.")] = dict(DESCRIBE_DEFAULTS)
    states: list[State] = [
        start,
        backoff.init_poll(settings.schedule, WAIT_FOR_STATEMENT, carry=carry),
        Wait(
            name=WAIT_FOR_STATEMENT,
            comment="Wait the current backoff before asking Redshift again.",
            time=WaitTime.seconds_path(f"{POLL_PATH}.wait_seconds"),
            next=GET_STATEMENT_STATUS,
        ),
        status,
    ]
    if settings.variant == "sdk":
        states += _summarize_describe_statement()
    states += [
        _check_status(),
        *backoff.backoff_states(settings.schedule, settings.max_polls, wait=WAIT_FOR_STATEMENT, exhausted=POLL_BUDGET_EXHAUSTED),
        Succeed(name=STATEMENT_FINISHED, comment="The statement summary is the execution output.", output_path=STATEMENT_PATH),
        Fail(
            name=STATEMENT_FAILED,
            comment="Redshift's error message is the Cause.",
            error=ERROR_STATEMENT_FAILED,
            cause=JsonPath(f"{STATEMENT_PATH}.error"),
        ),
        Fail(
            name=STATEMENT_ABORTED,
            error=ERROR_STATEMENT_ABORTED,
            cause=Intrinsic(f"States.Format('Statement {{}} was cancelled (ABORTED).', {STATEMENT_PATH}.statement_id)"),
        ),
        Fail(
            name=UNKNOWN_STATEMENT_STATUS,
            error=ERROR_UNKNOWN_STATUS,
            cause=Intrinsic(
                f"States.Format('Statement {{}} reported status {{}}, which this machine does not know.', "
                f"{STATEMENT_PATH}.statement_id, {STATEMENT_PATH}.status)"
            ),
        ),
        Fail(
            name=POLL_BUDGET_EXHAUSTED,
            comment="The statement may still be running in Redshift.",
            error=ERROR_POLL_BUDGET_EXHAUSTED,
            cause=Intrinsic(
                f"States.Format('Statement {{}} still {{}} after {{}} polls (the poll budget).', "
                f"{STATEMENT_PATH}.statement_id, {STATEMENT_PATH}.status, {POLL_PATH}.polls)"
            ),
        ),
        caught_error_fail(START_STATEMENT_FAILED, "Starting the statement"),
        caught_error_fail(GET_STATEMENT_STATUS_FAILED, "Getting the statement status"),
    ]
    return states


def _lambda_tasks(settings: WaitLoopSettings) -> tuple[Task, Task]:
    retry = (settings.retry.retry(LAMBDA_SERVICE_ERRORS),)
    start = Task(
        name=START_STATEMENT,
        comment="The statement-starter Lambda gets the execution input and returns {statement_id}.",
        resource=LAMBDA_INVOKE,
        parameters={"FunctionName": settings.statement_starter_arn, "Payload": JsonPath("$")},
        result_selector=lambda_payload_selector(STARTER_RESULT_FIELDS),
        result_path=STATEMENT_PATH,
        retry=retry,
        catch=(catch_all(START_STATEMENT_FAILED),),
        next=backoff.INIT_POLL,
    )
    status = Task(
        name=GET_STATEMENT_STATUS,
        comment="The statement-status Lambda gets {statement_id} and returns the statement summary.",
        resource=LAMBDA_INVOKE,
        parameters={
            "FunctionName": settings.statement_status_arn,
            "Payload": {"statement_id": JsonPath(f"{STATEMENT_PATH}.statement_id")},
        },
        result_selector={**lambda_payload_selector(STATUS_RESULT_FIELDS), "duration_ns": None},
        result_path=STATEMENT_PATH,
        retry=retry,
        catch=(catch_all(GET_STATEMENT_STATUS_FAILED),),
        next=CHECK_STATEMENT_STATUS,
    )
    return start, status


def _sdk_tasks(settings: WaitLoopSettings) -> tuple[Task, Task]:
    retry = (settings.retry.retry(REDSHIFT_DATA_TRANSIENT_ERRORS),)
    parameters: dict = {
        "Sql": JsonPath("$.sql"),
        "Database": JsonPath("$.database"),
        # Same token on every retry of this execution: a retried call never runs the SQL twice.
        "ClientToken": Intrinsic("States.Hash($$.Execution.Id, 'MD5')"),
    }
    if settings.sdk_target == "cluster":
        parameters["ClusterIdentifier"] = JsonPath("$.cluster_identifier")
    else:
        parameters["WorkgroupName"] = JsonPath("$.workgroup_name")
    if settings.sdk_auth == "secret_arn":
        parameters["SecretArn"] = JsonPath("$.secret_arn")
    elif settings.sdk_auth == "db_user":
        parameters["DbUser"] = JsonPath("$.db_user")
    if settings.sdk_with_parameters:
        parameters["Parameters"] = JsonPath("$.parameters")
    if settings.sdk_with_statement_name:
        parameters["StatementName"] = JsonPath("$.statement_name")
    start = Task(
        name=START_STATEMENT,
        comment="Redshift Data API ExecuteStatement, called by Step Functions directly.",
        resource=sdk_resource("redshiftdata", "executeStatement"),
        parameters=parameters,
        result_selector={"statement_id": JsonPath("$.Id")},
        result_path=STATEMENT_PATH,
        retry=retry,
        catch=(catch_all(START_STATEMENT_FAILED),),
        next=backoff.INIT_POLL,
    )
    status = Task(
        name=GET_STATEMENT_STATUS,
        comment="Redshift Data API DescribeStatement; the raw response goes to $.describe.",
        resource=sdk_resource("redshiftdata", "describeStatement"),
        parameters={"Id": JsonPath(f"{STATEMENT_PATH}.statement_id")},
        result_path=DESCRIBE_PATH,
        retry=retry,
        catch=(catch_all(GET_STATEMENT_STATUS_FAILED),),
        next=APPLY_DESCRIBE_DEFAULTS,
    )
    return start, status


def _summarize_describe_statement() -> list[Pass]:
    """DescribeStatement's response -> the statement summary the Lambda variant returns.

    Only ``Id`` is required in the Data API's model (``Error`` is absent unless the statement
    failed), and a missing path fails a state with an uncatchable States.Runtime, so the
    response is first merged over defaults kept in the payload. The defaults live in the
    payload, not in a ``States.StringToJson('{...}')`` literal, because AWS wants ``{``/``}``
    escaped in intrinsic string literals and moto does not unescape them.
    """
    response = DESCRIBE_PATH
    return [
        Pass(
            name=APPLY_DESCRIBE_DEFAULTS,
            parameters={"response": Intrinsic(f"States.JsonMerge({DEFAULTS_PATH}, {DESCRIBE_PATH}, false)")},
            result_path=DESCRIBE_PATH,
            next=SUMMARIZE_STATEMENT_STATUS,
        ),
        Pass(
            name=SUMMARIZE_STATEMENT_STATUS,
            comment="Rebuild the payload: summary, poll state and defaults; the raw response is dropped.",
            parameters={
                "statement": {
                    "statement_id": JsonPath(f"{response}.response.Id"),
                    "status": JsonPath(f"{response}.response.Status"),
                    "error": JsonPath(f"{response}.response.Error"),
                    "result_rows": JsonPath(f"{response}.response.ResultRows"),
                    "has_result_set": JsonPath(f"{response}.response.HasResultSet"),
                    "duration_ms": None,
                    "duration_ns": JsonPath(f"{response}.response.Duration"),
                    "query": JsonPath(f"{response}.response.QueryString"),
                },
                "poll": JsonPath(POLL_PATH),
                DEFAULTS_PATH.removeprefix("$."): JsonPath(DEFAULTS_PATH),
            },
            next=CHECK_STATEMENT_STATUS,
        ),
    ]


def _check_status() -> Choice:
    status = f"{STATEMENT_PATH}.status"
    return Choice(
        name=CHECK_STATEMENT_STATUS,
        rules=(
            ChoiceRule(Condition.string_equals(status, "FINISHED"), STATEMENT_FINISHED),
            ChoiceRule(Condition.string_equals(status, "FAILED"), STATEMENT_FAILED),
            ChoiceRule(Condition.string_equals(status, "ABORTED"), STATEMENT_ABORTED),
            ChoiceRule(
                Condition.or_(*(Condition.string_equals(status, s) for s in RUNNING_STATUSES)),
                backoff.CHECK_POLL_BUDGET,
            ),
        ),
        default=UNKNOWN_STATEMENT_STATUS,
    )
