"""Timer ids keep the encoding stored states and the due-time index already hold."""

import pytest

from sagas.engine import TimerId, TimerKind
from sagas.engine.timers import NODE_TIMERS, node_of_timer
from sagas.errors import SerializationError

STORED = {
    "d:charge": TimerId(TimerKind.STEP_DEADLINE, "charge"),
    "r:charge": TimerId(TimerKind.RETRY, "charge"),
    "cd:charge": TimerId(TimerKind.COMPENSATION_DEADLINE, "charge"),
    "cr:charge": TimerId(TimerKind.COMPENSATION_RETRY, "charge"),
    "s:cool_off": TimerId(TimerKind.SLEEP, "cool_off"),
    "w:approval": TimerId(TimerKind.WAIT, "approval"),
    "h:import_rows": TimerId(TimerKind.HEARTBEAT, "import_rows"),
    "cs:pay": TimerId(TimerKind.CHILD_START, "pay"),
    "ss:charge": TimerId(TimerKind.SCHEDULE_TO_START, "charge"),
    "sc:charge": TimerId(TimerKind.SCHEDULE_TO_CLOSE, "charge"),
}


@pytest.mark.parametrize(("text", "timer"), STORED.items())
def test_every_kind_encodes_as_before_and_decodes_back(text: str, timer: TimerId) -> None:
    assert timer.encode() == text
    assert TimerId.decode(text) == timer


def test_every_kind_has_a_stored_example() -> None:
    assert {timer.kind for timer in STORED.values()} == set(TimerKind)


@pytest.mark.parametrize("text", ["charge", "x:charge", "", ":charge"])
def test_text_that_is_no_timer_id_is_refused(text: str) -> None:
    with pytest.raises(SerializationError, match="not a timer id"):
        TimerId.decode(text)


@pytest.mark.parametrize(("text", "timer"), STORED.items())
def test_only_sleeps_and_waits_belong_to_a_node(text: str, timer: TimerId) -> None:
    expected = timer.name if timer.kind in NODE_TIMERS else None
    assert node_of_timer(text) == expected
