"""What user code sees of a workflow: its input, earlier results and received signals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import BaseModel

from sagas.errors import SagaError
from sagas.payloads import PayloadTypes

if TYPE_CHECKING:
    from sagas.definition import Step

InputT = TypeVar("InputT", bound=BaseModel)
ResultT = TypeVar("ResultT")

_MISSING = object()


class WorkflowView(Generic[InputT]):
    """A read-only, typed view of one workflow, given to branch choosers and child inputs.

    Results and signal payloads are parsed into the user's types on first use only.
    """

    __slots__ = (
        "_input",
        "_input_json",
        "_parsed",
        "_results",
        "_signals",
        "_types",
        "saga",
        "version",
        "workflow_id",
    )

    def __init__(
        self,
        *,
        types: PayloadTypes,
        workflow_id: str,
        version: int,
        input_json: str,
        results: Mapping[str, Any],
        signals: Mapping[str, Any],
    ) -> None:
        self._types = types
        self.workflow_id = workflow_id
        self.saga = types.saga
        self.version = version
        self._input_json = input_json
        self._input: Any = _MISSING
        self._results = results
        self._signals = signals
        self._parsed: dict[str, Any] = {}

    @property
    def input(self) -> InputT:
        """The saga input, as the saga's input model."""
        if self._input is _MISSING:
            self._input = self._types.parse_input(self._input_json)
        value: InputT = self._input
        return value

    @overload
    def result_of(self, step: Step[Any, ResultT]) -> ResultT: ...
    @overload
    def result_of(self, step: str) -> Any: ...
    def result_of(self, step: Step[Any, Any] | str) -> Any:
        """The result of an earlier step, as its declared type.

        Raises ``SagaError`` if that step has not succeeded (yet) in this workflow.
        """
        name = step if isinstance(step, str) else step.name
        key = "r:" + name
        if key in self._parsed:
            return self._parsed[key]
        if name not in self._results:
            raise SagaError(
                f"step {name!r} has no result in this workflow (it has not succeeded)",
                saga=self.saga,
                workflow_id=self.workflow_id,
            )
        value = self._types.parse_result(name, self._results[name])
        self._parsed[key] = value
        return value

    def has_result(self, step: Step[Any, Any] | str) -> bool:
        """Whether an earlier step has succeeded in this workflow."""
        return (step if isinstance(step, str) else step.name) in self._results

    def received(self, signal: str) -> bool:
        """Whether a wait of this workflow has taken a signal of this name."""
        return signal in self._signals

    def signal(self, name: str) -> Any:
        """The payload of a taken signal (typed if its wait declared a model), else ``None``."""
        if name not in self._signals:
            return None
        key = "s:" + name
        if key not in self._parsed:
            self._parsed[key] = self._types.parse_signal(name, self._signals[name])
        return self._parsed[key]

    def update(self, name: str) -> Any:
        """The payload of the latest applied update ``name`` (typed), else ``None``."""
        return self.signal(name)


class StepContext(WorkflowView[InputT]):
    """What an action or a compensation receives: the workflow plus this attempt's facts."""

    __slots__ = (
        "_beat",
        "_set_attribute",
        "attempt",
        "heartbeat_details",
        "idempotency_key",
        "is_compensation",
        "step",
    )

    def __init__(
        self,
        *,
        types: PayloadTypes,
        workflow_id: str,
        version: int,
        input_json: str,
        results: Mapping[str, Any],
        signals: Mapping[str, Any],
        step: str,
        attempt: int,
        idempotency_key: str,
        is_compensation: bool,
        heartbeat_details: Any = None,
        beat: Callable[[Any], None] | None = None,
        set_attribute: Callable[[str, object], None] | None = None,
    ) -> None:
        super().__init__(
            types=types,
            workflow_id=workflow_id,
            version=version,
            input_json=input_json,
            results=results,
            signals=signals,
        )
        self.step = step
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.is_compensation = is_compensation
        self.heartbeat_details = heartbeat_details
        """What the last heartbeat of an earlier attempt of this step gave (parsed JSON), or
        ``None``: a long job resumes from it."""
        self._beat = beat
        self._set_attribute = set_attribute

    def heartbeat(self, details: Any = None) -> None:
        """Say this attempt is alive, with JSON-able ``details`` of where it is.

        Cheap to call often: the worker sends at most one heartbeat per third of the
        step's ``heartbeat_timeout``, with the latest details. A step that declares a
        ``heartbeat_timeout`` and goes that long without one fails the attempt, and the
        next attempt reads the last details as ``ctx.heartbeat_details``.
        """
        if self._beat is not None:
            self._beat(details)

    def set_search_attribute(self, name: str, value: str | int | float | bool) -> None:
        """Set a search attribute the saga declares for steps to set
        (``SearchAttribute(name, type)`` without ``from_input``).

        The value is applied when this attempt succeeds, with its result (a failed
        attempt sets nothing), and the workflow is listed by it from then on. Raises
        ``SagaError`` naming saga, step and attribute for a name the saga does not
        declare so, or a value of another type; uncaught, it fails the attempt like
        any other error of the action.
        """
        if self._set_attribute is None:
            raise SagaError(
                f"saga {self.saga!r}, step {self.step!r}: search attributes are set by a "
                "step's action, not by its compensation",
                saga=self.saga,
                workflow_id=self.workflow_id,
                step=self.step,
            )
        self._set_attribute(name, value)
