"""The test kit: run sagas in memory with a clock that skips, inject failures, check histories."""

from sagas.testing.environment import Execution, Fault, SagaTestEnvironment
from sagas.testing.failure_matrix import MatrixCase, assert_failure_matrix, failure_matrix
from sagas.testing.histories import (
    HistoryMismatchError,
    dump_history,
    load_history,
    replay_history,
)

__all__ = [
    "Execution",
    "Fault",
    "HistoryMismatchError",
    "MatrixCase",
    "SagaTestEnvironment",
    "assert_failure_matrix",
    "dump_history",
    "failure_matrix",
    "load_history",
    "replay_history",
]
