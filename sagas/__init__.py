"""kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone.

A saga module imports this package only: ``Saga``, ``Retry``, ``StepKind``,
``StepContext`` and the errors an action may raise. The engine, the client
(``sagas.client``), the runtime (``processors``) and the test kit (``sagas.testing``)
are imported from where they live.
"""

from sagas.config import KafkaSettings
from sagas.context import StepContext, WorkflowView
from sagas.definition import END, Saga, Step, StepExecutor, StepKind
from sagas.errors import (
    ActionError,
    DefinitionError,
    NonRetryableError,
    SagaError,
    UnapplicableEventError,
    UpdateRejectedError,
)
from sagas.retry import Retry

__all__ = [
    "END",
    "ActionError",
    "DefinitionError",
    "KafkaSettings",
    "NonRetryableError",
    "Retry",
    "Saga",
    "SagaError",
    "Step",
    "StepContext",
    "StepExecutor",
    "StepKind",
    "UnapplicableEventError",
    "UpdateRejectedError",
    "WorkflowView",
]
