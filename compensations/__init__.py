"""compensations package of kafka-sagas."""
