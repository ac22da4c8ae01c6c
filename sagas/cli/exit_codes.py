"""The exit codes of every ``sagas`` command, and the error that carries one."""

from __future__ import annotations

from enum import IntEnum

import click
from confluent_kafka import KafkaException

from sagas.errors import KafkaUnreachableError, SagaError, WaitTimeoutError, WorkflowNotFoundError


class ExitCode(IntEnum):
    """How a command ended; scripts can tell these apart."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    KAFKA_UNREACHABLE = 4
    TIMED_OUT = 5


EPILOG = (
    "Exit codes: 0 ok, 1 error, 2 usage error, 3 workflow not found, "
    "4 Kafka unreachable, 5 timed out waiting."
)


class CommandError(click.ClickException):
    """One line on stderr and the exit code that says what kind of failure it was."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code

    # click reads ``exit_code`` (a class attribute of ClickException) when a command fails.
    @property
    def exit_code(self) -> int:
        return int(self.code)

    @exit_code.setter
    def exit_code(self, value: int) -> None:
        self.code = ExitCode(value)


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit code of a failure."""
    if isinstance(exc, KafkaUnreachableError):
        return ExitCode.KAFKA_UNREACHABLE
    if isinstance(exc, WorkflowNotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, WaitTimeoutError):
        return ExitCode.TIMED_OUT
    return ExitCode.ERROR


def command_error(exc: SagaError | KafkaException) -> CommandError:
    """The :class:`CommandError` of a framework or Kafka error."""
    if isinstance(exc, KafkaException):
        return CommandError(f"Kafka error: {exc.args[0] if exc.args else exc}")
    return CommandError(str(exc), exit_code_of(exc))
