"""topics package of kafka-sagas."""
