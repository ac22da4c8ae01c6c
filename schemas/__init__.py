"""schemas package of kafka-sagas."""
