"""The one exception hierarchy of kafka-sagas.

Every error the framework raises is a :class:`SagaError`. Errors carry the
structured fields an operator needs (saga, workflow id, step, attempt) instead
of burying them in the message, and say whether retrying could help.
"""

from __future__ import annotations


class SagaError(Exception):
    """Root of every error raised by kafka-sagas."""

    def __init__(
        self,
        message: str,
        *,
        saga: str | None = None,
        workflow_id: str | None = None,
        step: str | None = None,
        attempt: int | None = None,
        non_retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.saga = saga
        self.workflow_id = workflow_id
        self.step = step
        self.attempt = attempt
        self.non_retryable = non_retryable

    def __str__(self) -> str:
        where = [
            f"{name}={value}"
            for name, value in (
                ("saga", self.saga),
                ("workflow_id", self.workflow_id),
                ("step", self.step),
                ("attempt", self.attempt),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class DefinitionError(SagaError):
    """A saga definition is invalid; raised when it is compiled."""


class ConfigurationError(SagaError):
    """A setting is missing or wrong, or a required tool is not installed."""


class ActionError(SagaError):
    """Raised by a user's action to fail its step with a chosen retry behaviour.

    ``ActionError("card declined", non_retryable=True)`` fails the step at once,
    without spending the remaining attempts of its retry policy.
    """


class NonRetryableError(ActionError):
    """An action error that no retry can fix (a declined card, a bad address)."""

    def __init__(self, message: str, **fields: object) -> None:
        fields.pop("non_retryable", None)
        super().__init__(message, non_retryable=True, **fields)  # type: ignore[arg-type]


class AttemptSupersededError(SagaError):
    """Raised by ``ctx.heartbeat`` in an attempt the saga has already given up on.

    A worker that takes over a dead one's partition runs its uncommitted commands again;
    once the command of a later attempt of the same step has arrived, the earlier one is
    stale (its answer would be ignored), so its next heartbeat ends it instead of letting
    it hold the later attempt back.
    """


class SerializationError(SagaError):
    """A record or payload could not be encoded or decoded."""


class KafkaUnavailableError(SagaError):
    """The Kafka cluster did not answer in time."""


class KafkaUnreachableError(KafkaUnavailableError):
    """No broker of the cluster answered at all, so nothing was read or written."""


class MemberFencedError(KafkaUnavailableError):
    """A processor's or worker's producer or consumer was fenced or failed fatally (a newer
    member took its place, or its transaction expired while it was stopped): its clients
    cannot be used again, but the process can start over as a fresh member."""


class WorkflowNotFoundError(SagaError):
    """The workflow id names no workflow of this saga."""


class WaitTimeoutError(SagaError):
    """What a call waited for (a workflow's end) did not happen within its timeout."""


class WorkflowEndedError(SagaError):
    """The workflow has already ended, so it cannot take this request."""


class UnapplicableEventError(SagaError):
    """An event cannot be applied to its workflow (unknown step or signal, bad JSON, no workflow).

    The saga processor sends such a record to the DLQ and parks the workflow.
    """


class RecordTooLargeError(SagaError):
    """A record would be larger than the topic or producer takes; carries both sizes."""

    def __init__(
        self,
        what: str,
        *,
        topic: str,
        size: int,
        limit: int,
        saga: str | None = None,
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(
            f"{what} is {size} bytes, over the limit of {limit} bytes of topic {topic}"
            " (pass a reference to the data instead of the data)",
            saga=saga,
            workflow_id=workflow_id,
            step=step,
            non_retryable=True,
        )
        self.topic = topic
        self.size = size
        self.limit = limit


class QueryUnavailableError(SagaError):
    """No processor could answer a visibility request in time (a rebalance or a restore
    was in progress, or no processor of the saga runs); retrying later may succeed."""


class QueryFailedError(SagaError):
    """A processor answered a visibility request with an error: a query function that
    raised or ran out of time, an unknown query or attribute, or a refused token."""

    def __init__(
        self, message: str, *, status: int, saga: str | None = None, workflow_id: str | None = None
    ) -> None:
        super().__init__(message, saga=saga, workflow_id=workflow_id, non_retryable=True)
        self.status = status
        """The HTTP status the processor answered with."""


class QueryWorkflowNotFoundError(QueryFailedError, WorkflowNotFoundError):
    """A query named a workflow no processor holds: a failed query (HTTP 404) and a workflow
    not found, as ``describe`` and ``status`` raise it."""


class UpdateRejectedError(SagaError):
    """An update the workflow refused: its validator or handler raised, or it came too late.

    ``reason`` is the kind of refusal (``UpdateTooLate``, ``WorkflowEnded``, the
    validator's exception class name...).
    """

    def __init__(self, message: str, *, reason: str, **fields: object) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.reason = reason
