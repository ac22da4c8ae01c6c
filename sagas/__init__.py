"""kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone.

A saga module imports this package only: ``Saga``, ``Retry``, ``StepKind``,
``StepContext`` and the errors an action may raise.
"""

from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.context import StepContext, WorkflowView
from sagas.definition import END, Saga, Step, StepKind
from sagas.errors import (
    ActionError,
    DefinitionError,
    NonRetryableError,
    SagaError,
    UnapplicableEventError,
)
from sagas.plan import Plan, Transition
from sagas.retry import Retry
from sagas.state import WorkflowState
from sagas.versions import SagaVersions, compile_versions

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
