"""A real Apache Kafka on the developer's machine, installed from Maven Central jars."""

from sagas.devkafka.cluster import LocalKafka, free_port
from sagas.devkafka.install import kafka_version, resolve_jars

__all__ = ["LocalKafka", "free_port", "kafka_version", "resolve_jars"]
