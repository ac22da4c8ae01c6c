"""Dead-letter records: the original bytes with headers saying why, from where, how often."""

from __future__ import annotations

from processors.outgoing_records import Outgoing
from topics.dead_letter_headers import (
    HEADER_ATTEMPTS,
    HEADER_EXCEPTION,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TIME,
    HEADER_TOPIC,
    HEADER_VALUE_OMITTED,
    HEADER_WORKFLOW,
    DlqReason,
)


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
    max_bytes: int | None = None,
) -> Outgoing:
    """The DLQ record of one input, keeping its key and bytes exactly as they arrived.

    When the record would carry more than ``max_bytes``, the value is left out (its size
    in the header :data:`HEADER_VALUE_OMITTED`), so the reason still reaches the DLQ.
    """
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
    if max_bytes is not None and value is not None:
        size = len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)
        if size > max_bytes:
            headers.append((HEADER_VALUE_OMITTED, str(len(value)).encode()))
            value = None
    return Outgoing(dlq_topic, key, value, headers=tuple(headers))
