"""The headers of a dead-letter record: why it went there, from where, how often.

The runtime writes them; the client's DLQ reader and ``sagas dlq`` read them back.
"""

from __future__ import annotations

from enum import StrEnum


class DlqReason(StrEnum):
    """Why a record went to the dead-letter queue."""

    UNDECODABLE = "undecodable"
    """The bytes are not a record of the event schema."""
    UNKNOWN_SAGA = "unknown_saga"
    """The event names a saga this processor does not run."""
    UNKNOWN_VERSION = "unknown_version"
    """The event names a version of the saga this worker does not have."""
    UNAPPLICABLE = "unapplicable"
    """The plan rejected the event (an unknown step or signal, a payload that is not JSON)."""
    PROCESSING_ERROR = "processing_error"
    """Applying the event raised an unexpected exception."""
    KEY_MISMATCH = "key_mismatch"
    """The record's key is not the workflow id it carries, so its partition may be wrong."""
    MISSING_KEY = "missing_key"
    """The record has no key, so the producer put it on a partition of its own choosing."""
    WRONG_PARTITION = "wrong_partition"
    """The record is not on the partition murmur2 of its workflow id names."""
    RECORD_TOO_LARGE = "record_too_large"
    """Applying the record would make a record (or the workflow's state) larger than a
    topic or the producer takes; the reason names the size and the limit."""


HEADER_REASON = "sagas.dlq.reason"
HEADER_EXCEPTION = "sagas.dlq.exception"
HEADER_TOPIC = "sagas.dlq.source.topic"
HEADER_PARTITION = "sagas.dlq.source.partition"
HEADER_OFFSET = "sagas.dlq.source.offset"
HEADER_ATTEMPTS = "sagas.dlq.attempts"
HEADER_WORKFLOW = "sagas.dlq.workflow_id"
HEADER_TIME = "sagas.dlq.time_ms"
HEADER_VALUE_OMITTED = "sagas.dlq.value_omitted"
"""Set (to the original size) when the original value was too large for the DLQ itself."""
HEADER_MARK = "sagas.dlq.mark"
"""On a marker record (no value): what became of an earlier dead letter, ``redriven`` or
``discarded``; the marked record is named by :data:`HEADER_MARKED`."""
HEADER_MARKED = "sagas.dlq.marked"
"""On a marker record: the DLQ position it marks, ``<partition>:<offset>``."""


class DeadLetterState(StrEnum):
    """What became of a dead-lettered record."""

    DEAD = "dead"
    """Still waiting: its workflow is parked (unless the reason parks nothing)."""
    REDRIVEN = "redriven"
    """Put back on the event log once; a second redrive is refused."""
    DISCARDED = "discarded"
    """Given up for good: its workflow was unparked without it."""


def decode_headers(headers: list[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    """The DLQ headers of a record as text, for the CLI and for redrive."""
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        for name, value in headers or ()
        if name.startswith("sagas.dlq.") and value is not None
    }
