"""Shadow replay: where a candidate saga definition would decide otherwise than the log says.

Each workflow's recorded inputs (and the timers the processor fired) are handed, in the
order the processor took them, to the candidate plan's ``handle``; its decisions are
compared with the ones recorded after that input. The read is assign-based with no
consumer group (:mod:`processors.log_reading`): it commits nothing, so the saga's groups
and topics are untouched and nothing shows up in their lag. Nothing is written anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from processors.log_reading import LogReader, Progress, processed_ends
from processors.saga_processor import routing_for
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError, SerializationError
from sagas.events import INPUT_TYPES, Event, EventType
from sagas.log_order import segments
from schemas.deployment_codecs import event_codec
from topics.naming import TopicNames

COMPARED = ("type", "step", "attempt", "payload", "error", "name", "due_ms", "parent")
"""The facts of a decision that must agree; ids, times and versions may differ."""


@dataclass(frozen=True, slots=True)
class DecisionDifference:
    """The first point at which a candidate decides otherwise for one workflow."""

    workflow_id: str
    trigger: Event
    """The input (or fired timer) after which the decisions differ."""
    recorded: Event | None
    """The first recorded decision that differs (``None``: the candidate decides more)."""
    candidate: Event | None
    """The candidate's decision in its place (``None``: it decides less)."""
    reason: str


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """What a shadow replay compared."""

    saga: str
    workflows: int
    events: int
    seconds: float
    differences: tuple[DecisionDifference, ...]


def first_difference(candidate: SagaVersions, events: Iterable[Event]) -> DecisionDifference | None:
    """Where ``candidate`` first decides otherwise on one workflow's logged events, if it does."""
    state: WorkflowState | None = None
    for segment in segments(events):
        trigger = segment.trigger
        recorded = segment.decisions
        if trigger.type is EventType.REDRIVE_REQUESTED:
            continue
        now = recorded[-1].time_ms if recorded else trigger.time_ms
        try:
            transition = candidate.plan_for(state, trigger).handle(state, trigger, now)
        except SagaError as exc:
            if recorded:
                return DecisionDifference(
                    trigger.workflow_id, trigger, recorded[0], None, f"the candidate fails: {exc}"
                )
            continue  # the recorded run could not apply it either
        decided = transition.decisions
        for want, got in zip(recorded, decided, strict=False):
            if _facts(want) != _facts(got):
                return DecisionDifference(
                    trigger.workflow_id, trigger, want, got,
                    f"recorded {describe(want)}, the candidate decides {describe(got)}",
                )  # fmt: skip
        if len(recorded) != len(decided):
            extra = len(decided) > len(recorded)
            at = len(recorded) if extra else len(decided)
            return DecisionDifference(
                trigger.workflow_id, trigger,
                None if extra else recorded[at], decided[at] if extra else None,
                f"{len(recorded)} decision(s) recorded, the candidate takes {len(decided)}",
            )  # fmt: skip
        state = transition.state
    return None


def shadow(
    candidate: SagaVersions, kafka: KafkaSettings, *, progress: Progress | None = None
) -> ShadowReport:
    """Compare ``candidate`` with every workflow recorded in its saga's event log."""
    started = time.perf_counter()
    routing = routing_for(candidate, kafka.topic_prefix)
    reader = LogReader(kafka, routing.events_topic)
    decode = event_codec(kafka, routing.events_topic).decode
    found: list[DecisionDifference] = []
    workflows = events_read = 0
    try:
        ranges = reader.ranges()
        group = TopicNames(candidate.name, kafka.topic_prefix).processor_group
        # Inputs the processor has not taken yet have no recorded decisions to compare.
        ends = processed_ends(kafka, group, routing.events_topic, ranges)
        total = sum(part.end - part.start for part in ranges)
        for part in ranges:
            by_workflow: dict[str, list[Event]] = {}
            for chunk in reader.read(part):
                for message in chunk:
                    value = message.value()
                    if value is None:
                        continue
                    try:
                        event = decode(value)
                    except SerializationError:
                        continue  # dead-lettered when it was read, never applied
                    if (message.offset() or 0) >= ends[part.partition] and (
                        event.type in INPUT_TYPES or event.type is EventType.REDRIVE_REQUESTED
                    ):
                        continue
                    by_workflow.setdefault(event.workflow_id, []).append(event)
                events_read += len(chunk)
                if progress is not None:
                    progress(events_read, total)
            workflows += len(by_workflow)
            for events in by_workflow.values():
                difference = first_difference(candidate, events)
                if difference is not None:
                    found.append(difference)
    finally:
        reader.close()
    found.sort(key=lambda d: d.workflow_id)
    return ShadowReport(
        candidate.name, workflows, events_read, time.perf_counter() - started, tuple(found)
    )


def _facts(event: Event) -> tuple[Any, ...]:
    return tuple(getattr(event, name) for name in COMPARED)


def describe(event: Event) -> str:
    """An event's compared facts, as ``(type=..., step=..., ...)``."""
    facts = ", ".join(
        f"{name}={value.value if isinstance(value, StrEnum) else value!r}"
        for name, value in zip(COMPARED, _facts(event), strict=True)
        if value
    )
    return f"({facts})"
