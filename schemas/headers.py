"""Names of the Kafka record headers kafka-sagas writes, documented in ``schemas/README.md``.

Headers carry what is about a record rather than in it, so that a record's
value stays exactly what its schema says (a dead-lettered value is kept
byte for byte, even when it is not Avro at all).
"""

from __future__ import annotations

DLQ_REASON = "sagas.dlq.reason"
"""Why the record was dead-lettered, one line of UTF-8 text."""

DLQ_ERROR_TYPE = "sagas.dlq.error-type"
"""The class name of the error that dead-lettered it (e.g. ``SerializationError``)."""

DLQ_SOURCE_TOPIC = "sagas.dlq.source-topic"
"""The topic the record was read from, UTF-8."""

DLQ_SOURCE_PARTITION = "sagas.dlq.source-partition"
"""The partition it was read from, as decimal text."""

DLQ_SOURCE_OFFSET = "sagas.dlq.source-offset"
"""The offset it was read at, as decimal text."""

DLQ_ATTEMPTS = "sagas.dlq.attempts"
"""How many times it was tried before being dead-lettered, as decimal text."""

DLQ_TIME_MS = "sagas.dlq.time-ms"
"""When it was dead-lettered, milliseconds since the Unix epoch as decimal text."""

DLQ_HEADERS = (
    DLQ_REASON,
    DLQ_ERROR_TYPE,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_ATTEMPTS,
    DLQ_TIME_MS,
)
"""Every header a dead-lettered record carries, besides the ones it came with."""
