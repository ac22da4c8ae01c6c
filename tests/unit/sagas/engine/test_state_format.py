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


def test_a_state_of_format_1_loads_and_is_written_in_the_newest_format() -> None:
    state = WorkflowState.from_bytes(FORMAT_1)
    assert state == expected_state()
    assert state.heartbeats == {}
    assert (state.failed_compensation, state.last_rejection) == (None, None)
    assert (state.run_id, state.previous_run_id, state.updates, state.undo_for) == ("", None, {}, 0)
    # Format 2 added the heartbeat details at the end, format 3 the failed compensation
    # and the last rejection, format 4 the run ids, update outcomes and children's state,
    # format 5 the search attributes steps set; everything before is as it was.
    data = state.to_bytes()
    assert data == b"[5," + FORMAT_1[3:-1] + b',{},null,null,"",null,{},0,[],{}]'
    assert WorkflowState.from_bytes(data) == state


def test_a_state_of_format_4_loads_without_step_set_search_attributes() -> None:
    format_4 = b"[4," + FORMAT_1[3:-1] + b',{},null,null,"r-1",null,{},0,["child"]]'
    state = WorkflowState.from_bytes(format_4)
    assert (state.run_id, state.unanswered) == ("r-1", ["child"])
    assert state.search_attributes == {}
    assert state.to_bytes() == b"[5," + format_4[3:-1] + b",{}]"


def test_search_attributes_steps_set_round_trip_with_their_types() -> None:
    state = expected_state()
    state.search_attributes = {"order_total": 120, "ratio": 0.5, "tier": "gold", "vip": True}
    data = state.to_bytes()
    assert data.endswith(b',{"order_total":120,"ratio":0.5,"tier":"gold","vip":true}]')
    loaded = WorkflowState.from_bytes(data)
    assert loaded == state
    assert [type(v) for v in loaded.search_attributes.values()] == [int, float, str, bool]
    copied = loaded.copy()
    copied.search_attributes["order_total"] = 7
    assert loaded.search_attributes["order_total"] == 120


@dataclass(slots=True)
class NotedState(WorkflowState):
    """A state with one more field, as a later version of the engine would have."""

    note: str = "none"


NEXT = STATE_FORMAT.version + 1
NOTED_FORMAT = StateFormat((*STATE_FIELDS, StateField("note", since=NEXT)), NotedState)


def test_a_state_of_format_1_loads_after_a_field_is_added() -> None:
    state = NOTED_FORMAT.read(FORMAT_1)
    assert isinstance(state, NotedState)
    assert state.note == "none"
    assert STATE_FORMAT.write(state) == STATE_FORMAT.write(expected_state())


def test_the_new_format_writes_its_version_and_reads_itself_back() -> None:
    state = NOTED_FORMAT.read(FORMAT_1)
    assert isinstance(state, NotedState)
    state.note = "checked"
    data = NOTED_FORMAT.write(state)
    assert data.startswith(f"[{NEXT},".encode())
    assert NOTED_FORMAT.read(data) == state
    with pytest.raises(SerializationError, match=f"unknown state format {NEXT}"):
        STATE_FORMAT.read(data)


def test_a_row_of_the_wrong_length_for_its_version_is_refused() -> None:
    with pytest.raises(SerializationError, match="has 20 fields"):
        STATE_FORMAT.read(FORMAT_1[:-1] + b",null]")


def test_fields_are_added_at_the_end_in_version_order() -> None:
    with pytest.raises(ValueError, match="at the end"):
        StateFormat((StateField("note", since=NEXT), *STATE_FIELDS), NotedState)
    with pytest.raises(ValueError, match="in order"):
        StateFormat((STATE_FIELDS[1], STATE_FIELDS[0], *STATE_FIELDS[2:]))
