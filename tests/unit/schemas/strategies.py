"""Hypothesis strategies for the records the codecs carry."""

from __future__ import annotations

from hypothesis import strategies as st

from sagas.events import (
    Command,
    CommandKind,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
    WorkflowStatus,
)

# Avro strings are UTF-8, so lone surrogates cannot be written.
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
ids = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_text = st.none() | st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
errors = st.none() | st.builds(ErrorInfo, text, text, st.booleans())

events = st.builds(
    Event,
    event_id=ids,
    workflow_id=text,
    saga=text,
    version=ints,
    type=st.sampled_from(EventType),
    origin=st.sampled_from(Origin),
    time_ms=longs,
    step=st.none() | text,
    attempt=ints,
    payload=json_text,
    error=errors,
    name=st.none() | text,
    due_ms=st.none() | longs,
    parent=st.none() | text,
    cause=st.none() | text,
    search_attributes=json_text,
)

commands = st.builds(
    Command,
    command_id=ids,
    workflow_id=text,
    saga=text,
    version=ints,
    step=text,
    attempt=ints,
    kind=st.sampled_from(CommandKind),
    idempotency_key=text,
    reply_topic=text,
    time_ms=longs,
    deadline_ms=st.none() | longs,
    input=json_text,
    results=json_text,
    signals=json_text,
    heartbeat_details=json_text,
    heartbeat_timeout_ms=st.none() | longs,
    start_deadline_ms=st.none() | longs,
)

statuses = st.builds(
    StatusRecord,
    workflow_id=ids,
    saga=text,
    version=ints,
    status=st.sampled_from(WorkflowStatus),
    started_ms=longs,
    updated_ms=longs,
    current_steps=st.lists(text, max_size=5).map(tuple),
    result=json_text,
    error=errors,
    failed_step=st.none() | text,
    parked=st.booleans(),
)
