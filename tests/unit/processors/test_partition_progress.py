"""The committable offset never passes an unfinished command."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.partition_progress import PartitionProgress


def test_nothing_read_means_nothing_to_commit() -> None:
    assert PartitionProgress().committable() is None


def test_out_of_order_completion_holds_the_position() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12):
        progress.consumed(offset)
    progress.done(12)
    progress.done(11)
    assert progress.committable() == 10
    assert progress.in_flight == 1
    progress.done(10)
    assert progress.committable() == 13
    assert progress.in_flight == 0


@given(st.permutations(list(range(20))), st.integers(min_value=0, max_value=20))
def test_committable_is_first_unfinished(order: list[int], finished: int) -> None:
    progress = PartitionProgress()
    for offset in range(100, 120):
        progress.consumed(offset)
    done = {100 + i for i in order[:finished]}
    for offset in sorted(done, key=lambda o: order.index(o - 100)):
        progress.done(offset)
    unfinished = [o for o in range(100, 120) if o not in done]
    assert progress.committable() == (unfinished[0] if unfinished else 120)
