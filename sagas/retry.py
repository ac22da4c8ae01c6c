"""How often and how fast a step or a compensation is tried again after it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sagas.errors import DefinitionError

ErrorMatcher = type[BaseException] | str


def duration_ms(value: timedelta, what: str) -> int:
    """``value`` in whole milliseconds; raises ``DefinitionError`` unless it is positive."""
    if not isinstance(value, timedelta):
        raise DefinitionError(f"{what} must be a datetime.timedelta, got {value!r}")
    ms = value // timedelta(milliseconds=1)
    if ms <= 0:
        raise DefinitionError(f"{what} must be positive, got {value}")
    return ms


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry policy: the attempts a step gets and the pause between two of them."""

    max_attempts: int | None = 3
    """Attempts in all, the first one included; ``None`` retries without limit."""

    initial_interval: timedelta = timedelta(seconds=1)
    """Pause before the second attempt."""

    backoff_coefficient: float = 2.0
    """Each further pause is the previous one times this (>= 1)."""

    max_interval: timedelta | None = None
    """Longest pause between two attempts; ``None`` means 100 x ``initial_interval``."""

    non_retryable_errors: tuple[ErrorMatcher, ...] = ()
    """Exception types (or their names, for participants in other languages) that fail
    the step at once instead of being retried."""

    _initial_ms: int = field(init=False, repr=False, compare=False)
    _max_ms: int = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise DefinitionError(
                f"Retry.max_attempts must be a positive int or None, got {self.max_attempts!r}"
            )
        initial = duration_ms(self.initial_interval, "Retry.initial_interval")
        if not isinstance(self.backoff_coefficient, int | float) or self.backoff_coefficient < 1:
            raise DefinitionError(
                f"Retry.backoff_coefficient must be >= 1, got {self.backoff_coefficient!r}"
            )
        maximum = (
            initial * 100
            if self.max_interval is None
            else duration_ms(self.max_interval, "Retry.max_interval")
        )
        if maximum < initial:
            raise DefinitionError(
                f"Retry.max_interval ({self.max_interval}) is shorter than "
                f"Retry.initial_interval ({self.initial_interval})"
            )
        names: set[str] = set()
        for matcher in self.non_retryable_errors:
            if isinstance(matcher, str) and matcher:
                names.add(matcher)
            elif isinstance(matcher, type) and issubclass(matcher, BaseException):
                names.add(matcher.__name__)
            else:
                raise DefinitionError(
                    "Retry.non_retryable_errors must hold exception types or their names, "
                    f"got {matcher!r}"
                )
        object.__setattr__(self, "non_retryable_errors", tuple(self.non_retryable_errors))
        object.__setattr__(self, "_initial_ms", initial)
        object.__setattr__(self, "_max_ms", maximum)
        object.__setattr__(self, "_names", frozenset(names))

    @property
    def is_bounded(self) -> bool:
        """Whether the attempts are limited."""
        return self.max_attempts is not None

    def backoff_ms(self, failed_attempt: int) -> int:
        """Pause in milliseconds after attempt number ``failed_attempt`` (1-based) failed."""
        pause = self._initial_ms * self.backoff_coefficient ** (failed_attempt - 1)
        return int(min(pause, self._max_ms))

    def allows_attempt(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) may run."""
        return self.max_attempts is None or attempt <= self.max_attempts

    def is_non_retryable_name(self, type_name: str) -> bool:
        """Whether an error of this type name is listed as non-retryable."""
        return type_name in self._names

    def is_non_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` (or one of its base classes) is listed as non-retryable."""
        if not self._names:
            return False
        return any(klass.__name__ in self._names for klass in type(exc).__mro__)
