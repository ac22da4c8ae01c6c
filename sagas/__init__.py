"""kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone."""
