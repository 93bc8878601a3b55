"""A DISTRIBUTED Map fails when its failed items exceed the tolerance, as on AWS.

moto counts the failed items of a Map Run but always ends it SUCCEEDED (failed items just
yield null results). AWS fails the Map Run, and so the Map state, with
States.ExceedToleratedFailureThreshold once the failed or timed-out items exceed
ToleratedFailureCount, or their share of all items exceeds ToleratedFailurePercentage; with
neither field declared nothing is tolerated. Our chunked iterator relies on that to report
chunks that were not synced (the Map's Catch).

Unlike AWS, which may fail the Map Run while items are still running, the check is made once
every item has ended.
"""

from __future__ import annotations

from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
    MapRunRecord,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
    ToleratedFailureCountDecl,
    ToleratedFailurePercentageDecl,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

EXCEEDED = StatesErrorNameType.StatesExceedToleratedFailureThreshold
EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"

_original_from_state_props = state_map.StateMap.from_state_props
_original_map_run = distributed.DistributedIterationComponent._map_run


def _from_state_props(self, state_props) -> None:
    _original_from_state_props(self, state_props)
    # Which fields the definition sets: moto fills in 0 for a missing one, which for the
    # count would mean "no failure tolerated" even when only a percentage is set.
    self.iteration_component.declared_tolerance = (
        state_props.get(ToleratedFailureCountDecl) is not None,
        state_props.get(ToleratedFailurePercentageDecl) is not None,
    )


def exceeds_tolerance(record: MapRunRecord, total_items: int, count_declared: bool, percentage_declared: bool) -> bool:
    failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
    count_applies = count_declared or not percentage_declared  # the default is 0 failures tolerated
    over_count = count_applies and failed > record.tolerated_failure_count
    over_percentage = percentage_declared and failed * 100 > record.tolerated_failure_percentage * total_items
    return over_count or over_percentage


def _map_run(self, env, eval_input) -> None:
    total_items = len(env.stack[-1])  # the items, which the Map Run pops
    _original_map_run(self, env=env, eval_input=eval_input)
    declared = getattr(self, "declared_tolerance", (True, True))
    if not exceeds_tolerance(eval_input.map_run_record, total_items, *declared):
        return
    env.stack.pop()  # the results: a failed Map has none
    # Raised inside the Map Run, moto records MapRunFailed with this error and cause, marks the
    # Map Run FAILED (DescribeMapRun) and fails the Map state, which its Catch can handle.
    raise FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=EXCEEDED),
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=EXCEEDED.to_name(), cause=EXCEEDED_CAUSE)
            ),
        )
    )


def install() -> None:
    state_map.StateMap.from_state_props = _from_state_props
    distributed.DistributedIterationComponent._map_run = _map_run


def uninstall() -> None:
    state_map.StateMap.from_state_props = _original_from_state_props
    distributed.DistributedIterationComponent._map_run = _original_map_run
