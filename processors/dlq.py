"""Dead-letter records: the original bytes with headers saying why, from where, how often."""

from __future__ import annotations

from enum import StrEnum

from processors.outbox import Outgoing


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


HEADER_REASON = "sagas.dlq.reason"
HEADER_EXCEPTION = "sagas.dlq.exception"
HEADER_TOPIC = "sagas.dlq.source.topic"
HEADER_PARTITION = "sagas.dlq.source.partition"
HEADER_OFFSET = "sagas.dlq.source.offset"
HEADER_ATTEMPTS = "sagas.dlq.attempts"
HEADER_WORKFLOW = "sagas.dlq.workflow_id"
HEADER_TIME = "sagas.dlq.time_ms"


def dlq_record(
    dlq_topic: str,
    *,
    key: bytes | None,
    value: bytes | None,
    reason: DlqReason,
    exception: BaseException | str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    attempts: int,
    now_ms: int,
    workflow_id: str | None,
) -> Outgoing:
    """The DLQ record of one input, keeping its key and bytes exactly as they arrived."""
    if isinstance(exception, BaseException):
        text = f"{type(exception).__name__}: {exception}"
    else:
        text = exception
    headers = [
        (HEADER_REASON, reason.value.encode()),
        (HEADER_EXCEPTION, text.encode("utf-8", "replace")[:4096]),
        (HEADER_TOPIC, source_topic.encode()),
        (HEADER_PARTITION, str(source_partition).encode()),
        (HEADER_OFFSET, str(source_offset).encode()),
        (HEADER_ATTEMPTS, str(attempts).encode()),
        (HEADER_TIME, str(now_ms).encode()),
    ]
    if workflow_id is not None:
        headers.append((HEADER_WORKFLOW, workflow_id.encode()))
    return Outgoing(dlq_topic, key, value, headers=tuple(headers))


def decode_headers(headers: list[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    """The DLQ headers of a record as text, for the CLI and for redrive."""
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        for name, value in headers or ()
        if name.startswith("sagas.dlq.") and value is not None
    }
