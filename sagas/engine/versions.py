"""Several versions of one saga, compiled together so that one worker runs them side by side."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
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
    definitions: Mapping[int, Saga[Any]]
    """Each version's declaration, as compiled."""

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
    definitions: dict[int, Saga[Any]] = {}
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
        definitions[plan.version] = saga
    newest = plans[max(plans)]
    return SagaVersions(
        newest.name,
        MappingProxyType(dict(sorted(plans.items()))),
        newest,
        MappingProxyType(dict(sorted(functions.items()))),
        MappingProxyType(dict(sorted(definitions.items()))),
    )


def declaring_modules(versions: SagaVersions) -> tuple[str, ...] | None:
    """The modules whose top level declares every version of ``versions`` (so that another
    process importing them gets the very same definitions), or ``None`` if any is not
    (a saga declared inside a function, or in a script run as ``__main__``)."""
    modules = set()
    for definition in versions.definitions.values():
        module = sys.modules.get(definition.module or "")
        if module is None or module.__name__ == "__main__":
            return None
        try:
            declared = module_versions(module, versions.name)
        except DefinitionError:
            return None
        if not any(saga is definition for saga in declared):
            return None
        modules.add(module.__name__)
    return tuple(sorted(modules))


def import_versions(saga: str, modules: Iterable[str], versions: Iterable[int]) -> SagaVersions:
    """Versions ``versions`` of saga ``saga``, imported from ``modules`` (what
    :func:`declaring_modules` named in another process).

    Raises ``DefinitionError`` when the modules no longer declare exactly those versions.
    """
    modules, versions = tuple(modules), tuple(versions)
    found = {}
    for name in modules:
        for declared in module_versions(importlib.import_module(name), saga):
            found[declared.version] = declared
    missing = sorted(set(versions) - set(found))
    if missing:
        raise DefinitionError(
            f"modules {', '.join(modules)} do not declare version(s) {missing} of saga {saga!r}",
            saga=saga,
        )
    return compile_versions([found[version] for version in versions])


def module_versions(module: ModuleType, name: str | None = None) -> list[Saga[Any]]:
    """Every version of saga ``name`` that ``module`` declares, oldest first.

    A version is declared by a module-level ``Saga`` or one inside a module-level list
    or tuple; the same object under several names counts once. Without ``name`` the
    module must declare one saga only. Raises ``DefinitionError`` naming the module,
    saga and version when two objects claim one version.
    """
    where = module.__name__
    found: dict[int, tuple[str, Saga[Any]]] = {}
    for label, saga in _declared(module):
        if id(saga) not in found:
            found[id(saga)] = (label, saga)
    names = sorted({saga.name for _, saga in found.values()})
    if name is None:
        if not names:
            raise DefinitionError(f"module {where!r} declares no saga")
        if len(names) > 1:
            examples = ", ".join(
                f"{where}:{next(label for label, s in found.values() if s.name == saga_name)}"
                for saga_name in names
            )
            raise DefinitionError(
                f"module {where!r} declares several sagas ({', '.join(names)}): name one, "
                f"e.g. {examples}"
            )
        name = names[0]
    by_version: dict[object, tuple[str, Saga[Any]]] = {}
    for label, saga in found.values():
        if saga.name != name:
            continue
        other = by_version.get(saga.version)
        if other is not None:
            raise DefinitionError(
                f"module {where!r} declares version {saga.version} of saga {name!r} twice "
                f"({other[0]} and {label})",
                saga=name,
            )
        by_version[saga.version] = (label, saga)
    return [saga for _, saga in sorted(by_version.values(), key=lambda pair: _order(pair[1]))]


def _declared(module: ModuleType) -> Iterator[tuple[str, Saga[Any]]]:
    for attribute, value in vars(module).items():
        if isinstance(value, Saga):
            yield attribute, value
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Saga):
                    yield f"{attribute}[{i}]", item


def _order(saga: Saga[Any]) -> tuple[int, int]:
    # A malformed version is left for the compiler to name; it sorts last meanwhile.
    version = saga.version
    valid = isinstance(version, int) and not isinstance(version, bool)
    return (0, version) if valid else (1, 0)
