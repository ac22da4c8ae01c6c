"""kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone.

A saga module imports this package only: ``Saga``, ``Retry``, ``StepKind``,
``StepContext`` and the errors an action may raise.
"""

from typing import TYPE_CHECKING, Any

from sagas.context import StepContext, WorkflowView
from sagas.definition import END, Saga, Step, StepKind
from sagas.engine.plan import Plan, Transition
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import (
    ActionError,
    DefinitionError,
    NonRetryableError,
    SagaError,
    UnapplicableEventError,
)
from sagas.retry import Retry

if TYPE_CHECKING:
    from sagas.client import SagaClient
    from sagas.config import KafkaSettings

# The client and its settings load on first use: a saga module that only declares a saga
# does not import the Kafka client, and `schemas` (which the client needs) can import
# `sagas.errors` without a cycle.
_LAZY = {"SagaClient": "sagas.client", "KafkaSettings": "sagas.config"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sagas' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "END",
    "ActionError",
    "DefinitionError",
    "KafkaSettings",
    "NonRetryableError",
    "Plan",
    "Retry",
    "Saga",
    "SagaClient",
    "SagaError",
    "SagaVersions",
    "Step",
    "StepContext",
    "StepKind",
    "Transition",
    "UnapplicableEventError",
    "WorkflowState",
    "WorkflowView",
    "compile_versions",
]
