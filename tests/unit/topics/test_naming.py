from __future__ import annotations

import pytest

from sagas.errors import ConfigurationError
from topics.naming import (
    MAX_TOPIC_NAME_LENGTH,
    InvalidNameError,
    TopicNames,
    check_topic_name,
    command_topic,
    worker_group,
    worker_group_queues,
)


def test_saga_topics_and_processor_group() -> None:
    names = TopicNames("order", prefix="prod.")
    assert names.events == "prod.order.events"
    assert names.state_changelog == "prod.order.state-changelog"
    assert names.status == "prod.order.status"
    assert names.dlq == "prod.order.dlq"
    assert names.processor_group == "prod.order.processor"
    assert names.saga_topics() == (
        "prod.order.events",
        "prod.order.state-changelog",
        "prod.order.status",
        "prod.order.dlq",
    )


def test_command_topics_belong_to_the_queue_not_the_saga() -> None:
    order, refund = TopicNames("order"), TopicNames("refund")
    assert order.commands("payments") == refund.commands("payments") == "queue.payments.commands"
    assert order.worker_group("payments") == refund.worker_group("payments")
    assert order.worker_group("payments") == "queue.payments.workers"
    assert command_topic("payments", "prod.") == "prod.queue.payments.commands"
    assert worker_group("payments", "prod.") == "prod.queue.payments.workers"


def test_default_queue_is_named_like_the_saga() -> None:
    names = TopicNames("order")
    assert names.commands() == "queue.order.commands"
    assert names.worker_group() == "queue.order.workers"


def test_queue_topics_never_collide_with_saga_topics() -> None:
    saga_named_queue = TopicNames("queue")
    queue_named_events = TopicNames("x").commands("events")
    assert saga_named_queue.events == "queue.events"
    assert queue_named_events == "queue.events.commands"
    assert queue_named_events not in saga_named_queue.saga_topics()


@pytest.mark.parametrize(
    ("saga", "bad"),
    [("order saga", "' '"), ("ordre/ü", "'/', 'ü'"), ("a:b", "':'")],
)
def test_illegal_characters_are_named_in_the_error(saga: str, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="saga name") as caught:
        TopicNames(saga)
    assert bad in str(caught.value)
    assert caught.value.name == saga
    assert caught.value.what == "saga name"
    assert isinstance(caught.value, ConfigurationError)


def test_empty_saga_and_queue_names_are_refused() -> None:
    with pytest.raises(InvalidNameError, match="saga name must not be empty"):
        TopicNames("")
    with pytest.raises(InvalidNameError, match="queue name must not be empty"):
        TopicNames("order").commands("")


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="topic prefix 'prod/'"):
        TopicNames("order", prefix="prod/")


def test_names_longer_than_kafka_allows_are_refused() -> None:
    longest_saga = MAX_TOPIC_NAME_LENGTH - len(".state-changelog")
    names = TopicNames("s" * longest_saga)
    assert len(names.state_changelog) == MAX_TOPIC_NAME_LENGTH
    with pytest.raises(InvalidNameError, match="250 characters long; Kafka allows at most 249"):
        TopicNames("s" * (longest_saga + 1))


@pytest.mark.parametrize("name", [".", ".."])
def test_reserved_topic_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        check_topic_name(name)


def test_legal_topic_name_is_returned() -> None:
    assert check_topic_name("a-b_c.D9") == "a-b_c.D9"


def test_a_worker_group_is_named_after_every_queue_it_serves() -> None:
    names = TopicNames("order", "prod.")

    assert names.worker_group(["shipping", "payments"]) == "prod.queue.payments+shipping.workers"
    assert worker_group(["payments"], "prod.") == worker_group("payments", "prod.")
    assert worker_group_queues("prod.queue.payments+shipping.workers", "prod.") == (
        "payments",
        "shipping",
    )
    assert worker_group_queues("prod.queue.payments.workers", "prod.") == ("payments",)
    assert worker_group_queues("prod.order.processor", "prod.") is None
    assert worker_group_queues("queue.payments.workers", "prod.") is None


def test_a_worker_group_of_many_long_queues_stays_within_kafka_limits() -> None:
    queues = [f"queue-{i:03d}-{'x' * 40}" for i in range(10)]

    group = worker_group(queues)

    assert len(group) <= 249
    assert group == worker_group(list(reversed(queues)))
    assert group != worker_group(queues[:-1])
