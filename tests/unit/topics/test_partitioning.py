"""murmur2 matches the reference values of Kafka's Java client."""

from __future__ import annotations

import pytest

from topics.partitioning import murmur2, partition_for


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Values from Kafka's UtilsTest.testMurmur2 (as signed ints there).
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_reference_values(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected & 0xFFFFFFFF


def test_partition_is_in_range_and_rejects_empty_topics() -> None:
    assert {partition_for(str(i).encode(), 7) for i in range(1000)} == set(range(7))
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)
