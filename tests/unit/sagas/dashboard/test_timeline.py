from sagas.dashboard.timeline import Lane, lane_of, step_summaries, timeline
from sagas.events import ErrorInfo, Event, EventType, Origin


def event(
    type_: EventType, ms: int, step: str | None = None, attempt: int = 0, **kw: object
) -> Event:
    return Event("e", "w", "shop", 1, type_, Origin.PROCESSOR, ms, step=step, attempt=attempt, **kw)  # type: ignore[arg-type]


EVENTS = [
    event(EventType.STARTED, 1000),
    event(EventType.STEP_SCHEDULED, 1001, "reserve", 1),
    event(EventType.STEP_SUCCEEDED, 1010, "reserve", 1),
    event(EventType.TIMER_STARTED, 1011, name="cool_off"),
    event(EventType.TIMER_FIRED, 1311, name="cool_off"),
    event(EventType.STEP_SCHEDULED, 1312, "charge", 1),
    event(EventType.STEP_FAILED, 1320, "charge", 1, error=ErrorInfo("ActionError", "busy")),
    event(EventType.RETRY_SCHEDULED, 1321, "charge", 1),
    event(EventType.STEP_SCHEDULED, 1400, "charge", 2),
    event(EventType.STEP_FAILED, 1410, "charge", 2, payload="x" * 300),
    event(EventType.COMPENSATION_SCHEDULED, 1411, "reserve", 1),
    event(EventType.COMPENSATION_SUCCEEDED, 1420, "reserve", 1),
    event(EventType.COMPENSATED, 1421),
]


def test_every_event_type_has_a_lane() -> None:
    assert lane_of(event(EventType.SIGNAL_RECEIVED, 0)) is Lane.SIGNAL
    assert lane_of(event(EventType.COMPENSATED, 0)) is Lane.OUTCOME
    assert {lane_of(event(t, 0)) for t in EventType} == set(Lane)


def test_entries_keep_log_order_with_offsets_errors_and_short_payloads() -> None:
    entries = timeline(EVENTS)
    assert [e.type for e in entries] == [e.type.value for e in EVENTS]
    assert entries[4].since_start_s == 0.311
    assert entries[6].error == "ActionError: busy"
    assert entries[9].payload is not None
    assert len(entries[9].payload) == 120
    assert entries[9].payload.endswith("...")
    assert timeline([]) == []


def test_step_summaries_count_attempts_and_compensations() -> None:
    summary = {s.step: s for s in step_summaries(EVENTS)}
    assert list(summary) == ["reserve", "charge"]
    assert (summary["reserve"].attempts, summary["reserve"].outcome) == (1, "succeeded")
    assert summary["reserve"].compensation == "compensated"
    assert (summary["charge"].attempts, summary["charge"].outcome) == (2, "failed")
    assert summary["charge"].compensation is None
