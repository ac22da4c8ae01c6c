"""The stored workflow state: one field table, every format version so far still read."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from sagas.engine import Phase, StepRun, WorkflowState
from sagas.engine.state import STATE_FIELDS, STATE_FORMAT, StateField, StateFormat
from sagas.errors import SerializationError
from sagas.events import ErrorInfo, WorkflowStatus

# Written by the state format as it was before the field table (format 1): states in
# changelog topics look like this and must keep loading.
FORMAT_1 = (Path(__file__).parent / "state_format_1.json").read_bytes()


def expected_state() -> WorkflowState:
    declined = ErrorInfo("Declined", "card declined", True)
    return WorkflowState(
        "wf-1",
        "order",
        2,
        WorkflowStatus.COMPENSATING,
        1000,
        2000,
        '{"order_id":"o1"}',
        parent="trip/t-1/order",
        cursor=3,
        entered=True,
        steps={
            "reserve": StepRun(Phase.SUCCEEDED, 1, '{"ref":"r1"}'),
            "charge": StepRun(Phase.COMP_SCHEDULED, 2, None, declined, 1),
            "child": StepRun(Phase.SCHEDULED, 1, child="wf-1/child"),
        },
        completed=["reserve"],
        signals={"approved": "true"},
        pending=[("late", '{"x":1}')],
        timers={"d:child": 5000, "cd:charge": 6000, "w:approval": 7000},
        cancel="user asked",
        error=declined,
        failed_step="charge",
    )


def test_a_state_of_format_1_loads_and_is_written_as_format_1_plus_the_new_fields() -> None:
    state = WorkflowState.from_bytes(FORMAT_1)
    assert state == expected_state()
    assert state.heartbeats == {}
    # Format 2 added the heartbeat details at the end; everything before is as it was.
    assert state.to_bytes() == b"[2," + FORMAT_1[3:-1] + b",{}]"
    assert WorkflowState.from_bytes(state.to_bytes()) == state


@dataclass(slots=True)
class NotedState(WorkflowState):
    """A state with one more field, as a later version of the engine would have."""

    note: str = "none"


NOTED_FORMAT = StateFormat((*STATE_FIELDS, StateField("note", since=3)), NotedState)


def test_a_state_of_format_1_loads_after_a_field_is_added() -> None:
    state = NOTED_FORMAT.read(FORMAT_1)
    assert isinstance(state, NotedState)
    assert state.note == "none"
    assert STATE_FORMAT.write(state) == b"[2," + FORMAT_1[3:-1] + b",{}]"


def test_the_new_format_writes_its_version_and_reads_itself_back() -> None:
    state = NOTED_FORMAT.read(FORMAT_1)
    assert isinstance(state, NotedState)
    state.note = "checked"
    data = NOTED_FORMAT.write(state)
    assert data.startswith(b"[3,")
    assert NOTED_FORMAT.read(data) == state
    with pytest.raises(SerializationError, match="unknown state format 3"):
        STATE_FORMAT.read(data)


def test_a_row_of_the_wrong_length_for_its_version_is_refused() -> None:
    with pytest.raises(SerializationError, match="has 20 fields"):
        STATE_FORMAT.read(FORMAT_1[:-1] + b",null]")


def test_fields_are_added_at_the_end_in_version_order() -> None:
    with pytest.raises(ValueError, match="at the end"):
        StateFormat((StateField("note", since=3), *STATE_FIELDS), NotedState)
    with pytest.raises(ValueError, match="in order"):
        StateFormat((*STATE_FIELDS[1:-1], STATE_FIELDS[0], STATE_FIELDS[-1]))
