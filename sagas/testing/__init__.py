"""The test kit: run sagas in memory with a clock that skips, inject failures, check histories."""

from sagas.testing.environment import Execution, Fault, SagaTestEnvironment
from sagas.testing.failure_matrix import MatrixCase, assert_failure_matrix, failure_matrix

__all__ = [
    "Execution",
    "Fault",
    "MatrixCase",
    "SagaTestEnvironment",
    "assert_failure_matrix",
    "failure_matrix",
]
