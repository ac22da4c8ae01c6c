from __future__ import annotations

import confluent_kafka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagas.errors import ConfigurationError
from topics.partitioning import murmur2, partition_for

# Kafka's own test vectors (clients UtilsTest.testMurmur2), as Java's signed ints.
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java"), JAVA_VECTORS.items())
def test_murmur2_matches_the_java_client(key: bytes, java: int) -> None:
    assert murmur2(key) == java & 0xFFFFFFFF


@given(key=st.binary(max_size=64), partitions=st.integers(1, 1000))
def test_partition_matches_librdkafka(key: bytes, partitions: int) -> None:
    assert partition_for(key, partitions) == confluent_kafka.murmur2(key, partitions)


def test_zero_partitions_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one partition, not 0"):
        partition_for(b"order-1", 0)
