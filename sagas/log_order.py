"""The order in which the saga processor applied a workflow's events, read back from its log.

The processor appends a batch's decisions after every input of that batch, so in the log
a workflow's second input of a batch can stand before the decisions the first one led
to. Every decision names the input it answers (``cause``); this module puts each input
back in front of its own decisions, which is the order a fold must follow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sagas.events import Event, EventType, Origin


def is_trigger(event: Event) -> bool:
    """Whether ``event`` starts a step of the processor: an input, or a timer it fired."""
    return event.origin is not Origin.PROCESSOR or event.type is EventType.TIMER_FIRED


@dataclass(slots=True)
class Segment:
    """One step of the processor: what triggered it and the decisions it appended."""

    trigger: Event
    decisions: list[Event] = field(default_factory=list)
    """For a fired timer, the timer's own event comes first, as the processor logs it."""


def segments(events: Iterable[Event]) -> Iterator[Segment]:
    """A workflow's log events as the processor's steps, in the order it took them.

    An input is followed by the decisions whose ``cause`` is its id. A decision of no
    waiting input (a fired timer, a result refused as too large) closes every input
    still waiting first, since a batch fires its timers after its records.
    """
    waiting: list[Segment] = []
    by_id: dict[str, Segment] = {}
    for event in events:
        if event.origin is not Origin.PROCESSOR:
            segment = Segment(event)
            waiting.append(segment)
            by_id[event.event_id] = segment
            continue
        cause = by_id.get(event.cause) if event.cause is not None else None
        if cause is not None:
            while waiting and waiting[0] is not cause:
                yield _close(waiting.pop(0), by_id)
            cause.decisions.append(event)
            continue
        yield from (_close(segment, by_id) for segment in waiting)
        waiting.clear()
        if event.type is EventType.TIMER_FIRED:
            # Its follow-ups name it as their cause: they attach to it when they come.
            segment = Segment(event, [event])
            waiting.append(segment)
            by_id[event.event_id] = segment
        else:
            yield Segment(event, [event])
    yield from (_close(segment, by_id) for segment in waiting)


def _in_order(events: list[Event]) -> bool:
    """Whether every decision follows what caused it with no other input between (the
    common case, checked cheaply before any reordering)."""
    last: str | None = None
    processor = Origin.PROCESSOR
    fired = EventType.TIMER_FIRED
    for event in events:
        if event.origin is not processor or event.type is fired:
            last = event.event_id
        elif event.cause is not None and event.cause != last:
            return False
    return True


def _close(segment: Segment, by_id: dict[str, Segment]) -> Segment:
    # A duplicate delivery carries the id of an earlier input: that id may name a later
    # segment by now, which stays open.
    if by_id.get(segment.trigger.event_id) is segment:
        del by_id[segment.trigger.event_id]
    return segment


def processing_order(events: Iterable[Event]) -> list[Event]:
    """A workflow's events reordered so that each input precedes its own decisions."""
    events = list(events)
    if _in_order(events):
        return events
    ordered: list[Event] = []
    for segment in segments(events):
        if segment.decisions and segment.decisions[0] is segment.trigger:
            ordered.extend(segment.decisions)
        else:
            ordered.append(segment.trigger)
            ordered.extend(segment.decisions)
    return ordered


def ignored_positions(events: Sequence[Event]) -> set[int]:
    """The positions of the inputs among ``events`` that the processor answered with
    ``answer_ignored``, in any order the log holds them.

    A duplicate delivery carries the id of the first, and once one delivery of an id has
    been applied or ignored, every later one is ignored: so of the ``n`` deliveries of an
    id that ``k`` ignores name, the last ``k`` are the ignored ones.
    """
    ignores = Counter(e.cause for e in events if e.type is EventType.ANSWER_IGNORED)
    if not ignores:
        return set()
    deliveries: dict[str, list[int]] = {}
    for i, event in enumerate(events):
        if event.origin is not Origin.PROCESSOR and event.event_id in ignores:
            deliveries.setdefault(event.event_id, []).append(i)
    ignored: set[int] = set()
    for event_id, positions in deliveries.items():
        ignored.update(positions[max(0, len(positions) - ignores[event_id]) :])
    return ignored
