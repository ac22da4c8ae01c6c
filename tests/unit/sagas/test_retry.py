from datetime import timedelta

import pytest

from sagas import DefinitionError, Retry


def test_backoff_grows_by_the_coefficient_and_stops_at_the_maximum() -> None:
    retry = Retry(
        max_attempts=10,
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=3.0,
        max_interval=timedelta(seconds=20),
    )
    assert [retry.backoff_ms(n) for n in (1, 2, 3, 4)] == [1000, 3000, 9000, 20000]


def test_default_max_interval_is_a_hundred_times_the_initial_one() -> None:
    retry = Retry(max_attempts=None, initial_interval=timedelta(milliseconds=10))
    assert retry.backoff_ms(40) == 1000
    assert retry.allows_attempt(10_000)
    assert not retry.is_bounded


def test_attempt_limit() -> None:
    retry = Retry(max_attempts=2)
    assert retry.allows_attempt(2)
    assert not retry.allows_attempt(3)


class CardDeclinedError(Exception):
    pass


class StolenCardError(CardDeclinedError):
    pass


def test_non_retryable_errors_by_type_name_and_subclass() -> None:
    retry = Retry(non_retryable_errors=(CardDeclinedError, "AddressInvalid"))
    assert retry.is_non_retryable(StolenCardError())
    assert retry.is_non_retryable_name("AddressInvalid")
    assert retry.is_non_retryable_name("CardDeclinedError")
    assert not retry.is_non_retryable(ValueError())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial_interval": timedelta(0)}, "initial_interval must be positive"),
        ({"initial_interval": 5}, "timedelta"),
        ({"backoff_coefficient": 0.5}, "backoff_coefficient"),
        ({"max_interval": timedelta(milliseconds=1)}, "shorter than"),
        ({"non_retryable_errors": (42,)}, "non_retryable_errors"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Retry(**kwargs)  # type: ignore[arg-type]
