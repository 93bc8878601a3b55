"""Pure builders of the project's Step Functions state machines (no boto3, no Airflow, no I/O).

Typed states render themselves to ASL; :class:`StateMachine` validates the graph and renders
stable JSON. The two machines: :func:`build_wait_loop` and :func:`build_chunked_iterator`.
"""

from .backoff import backoff_schedule
from .chunked_iterator import ChunkedIteratorSettings, build_chunked_iterator
from .conditions import Condition
from .integrations import RetryPolicy
from .machine import InvalidStateMachine, StateGraph, StateMachine, definition_hash_of
from .paths import Intrinsic, JsonPath
from .states import Catch, Choice, ChoiceRule, Fail, ItemReader, Map, Pass, Retry, Succeed, Task, Wait, WaitTime
from .wait_loop import HistoryBudget, WaitLoopSettings, build_wait_loop, history_budget

__all__ = [
    "Catch", "Choice", "ChoiceRule", "ChunkedIteratorSettings", "Condition", "Fail", "HistoryBudget",
    "Intrinsic", "InvalidStateMachine", "ItemReader", "JsonPath", "Map", "Pass", "Retry", "RetryPolicy",
    "StateGraph", "StateMachine", "Succeed", "Task", "Wait", "WaitLoopSettings", "WaitTime",
    "backoff_schedule", "build_chunked_iterator", "build_wait_loop", "definition_hash_of", "history_budget",
]
