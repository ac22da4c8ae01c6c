"""processors package of kafka-sagas."""
