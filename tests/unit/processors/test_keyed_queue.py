"""The step worker's key-ordered concurrency: a key's items in order, the rest at once."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.keyed_queue import KeyedQueue


def test_items_of_one_key_run_one_after_another_in_order() -> None:
    queue: KeyedQueue[str, str] = KeyedQueue(max_running=10)
    assert queue.submit("wf/a", "attempt 1") == ["attempt 1"]
    assert queue.submit("wf/a", "attempt 2") == []
    assert queue.submit("wf/a", "compensate") == []
    assert queue.submit("wf/b", "other step") == ["other step"]
    assert queue.done("wf/a") == ["attempt 2"]
    assert queue.done("wf/a") == ["compensate"]
    assert queue.done("wf/a") == []
    assert queue.running == 1


def test_a_cleared_queue_starts_afresh() -> None:
    queue: KeyedQueue[str, int] = KeyedQueue(max_running=1)
    queue.submit("a", 1)
    queue.submit("a", 2)
    queue.submit("b", 3)
    queue.clear()
    assert queue.running == 0
    assert queue.submit("a", 4) == [4]


def test_no_more_than_the_limit_run_and_waiting_items_start_as_others_finish() -> None:
    queue: KeyedQueue[int, int] = KeyedQueue(max_running=2)
    assert queue.submit(1, 1) == [1]
    assert queue.submit(2, 2) == [2]
    assert queue.submit(3, 3) == []
    assert queue.running == 2
    assert queue.done(1) == [3]
    assert queue.running == 2


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 4), min_size=1, max_size=30),
    limit=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_any_completion_order_keeps_each_key_in_order_and_the_limit(
    keys: list[int], limit: int, seed: int
) -> None:
    queue: KeyedQueue[int, int] = KeyedQueue(max_running=limit)
    chooser = random.Random(seed)
    running: list[int] = []
    started: list[int] = []
    for index, key in enumerate(keys):
        for item in queue.submit(key, index):
            running.append(item)
            started.append(item)
        assert len(running) <= limit
    while running:
        item = running.pop(chooser.randrange(len(running)))
        for ready in queue.done(keys[item]):
            running.append(ready)
            started.append(ready)
        assert len(running) == queue.running <= limit
        assert len({keys[i] for i in running}) == len(running), "two items of one key at once"
    assert sorted(started) == list(range(len(keys)))
    for key in set(keys):
        assert [i for i in started if keys[i] == key] == [i for i, k in enumerate(keys) if k == key]
    assert queue.running == 0
