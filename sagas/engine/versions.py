"""Several versions of one saga, compiled together so that one worker runs them side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sagas.definition import Saga
from sagas.engine.compiler import compile_saga
from sagas.engine.execution import StepFunctions
from sagas.engine.plan import Plan
from sagas.engine.state import WorkflowState
from sagas.errors import DefinitionError, UnapplicableEventError
from sagas.events import Event


@dataclass(frozen=True, slots=True)
class SagaVersions:
    """The compiled versions of one saga; new workflows start on ``newest``."""

    name: str
    plans: Mapping[int, Plan]
    newest: Plan
    functions: Mapping[int, StepFunctions]
    """The user functions each version's commands run (for step workers and the test kit)."""

    @property
    def queues(self) -> frozenset[str]:
        """Every queue any version sends commands to."""
        return frozenset().union(*(plan.queues for plan in self.plans.values()))

    def plan_for(self, state: WorkflowState | None, event: Event) -> Plan:
        """The plan that applies ``event``: the workflow's own version, else the requested one.

        Version 0 on an event for no existing workflow (a ``start_requested``,
        usually) means the newest version. Raises ``UnapplicableEventError`` for a
        version this worker does not have.
        """
        version = state.version if state is not None else event.version
        if version == 0 and state is None:
            return self.newest
        plan = self.plans.get(version)
        if plan is None:
            raise UnapplicableEventError(
                f"version {version} of saga {self.name!r} is not deployed here "
                f"(known: {sorted(self.plans)})",
                saga=self.name,
                workflow_id=event.workflow_id,
            )
        return plan


def compile_versions(obj: Saga[Any] | SagaVersions | Iterable[Saga[Any]]) -> SagaVersions:
    """Compile a saga, or several versions of one saga, into a :class:`SagaVersions`.

    Raises ``DefinitionError`` if the sagas have different names, two share a
    version, or any of them is invalid.
    """
    if isinstance(obj, SagaVersions):
        return obj
    sagas = [obj] if isinstance(obj, Saga) else list(obj)
    if not sagas:
        raise DefinitionError("no saga given")
    plans: dict[int, Plan] = {}
    functions: dict[int, StepFunctions] = {}
    name = sagas[0].name if isinstance(sagas[0], Saga) else None
    for saga in sagas:
        if not isinstance(saga, Saga):
            raise DefinitionError(f"expected a Saga, got {saga!r}")
        if saga.name != name:
            raise DefinitionError(
                f"versions of one saga must share its name; got {name!r} and {saga.name!r}",
                saga=saga.name,
            )
        plan = compile_saga(saga)
        if plan.version in plans:
            raise DefinitionError(f"version {plan.version} is given twice", saga=saga.name)
        plans[plan.version] = plan
        functions[plan.version] = StepFunctions.of(saga, plan.types)
    newest = plans[max(plans)]
    return SagaVersions(
        newest.name,
        MappingProxyType(dict(sorted(plans.items()))),
        newest,
        MappingProxyType(dict(sorted(functions.items()))),
    )
