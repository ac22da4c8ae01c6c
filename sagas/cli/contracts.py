"""A saga's step contracts, read from its compiled plan, and their registration and checks."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from sagas.engine.plan import Plan
from sagas.engine.versions import SagaVersions
from sagas.events import CommandKind
from schemas.registry import SchemaRegistryClient
from schemas.step_contracts import Contract, saga_contracts

COMPATIBILITY_LEVELS = (
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE", "NONE",
)  # fmt: skip
"""The registry's compatibility rules; BACKWARD (readers of the new schema read the old) is ours."""


def contracts_of(versions: SagaVersions, prefix: str) -> list[Contract]:
    """The contracts of every version of a saga that is deployed, oldest first.

    Each version's workflows keep running on it, so each version's steps and signals
    keep their own subjects (see :mod:`schemas.step_contracts`).
    """
    return [
        contract
        for plan in versions.plans.values()
        for contract in _plan_contracts(versions, plan, prefix)
    ]


def _plan_contracts(versions: SagaVersions, plan: Plan, prefix: str) -> list[Contract]:
    """One version's contracts: every step a queue serves, every typed signal."""
    functions = versions.functions[plan.version]
    steps: dict[str, tuple[str, Any]] = {}
    for name, spec in plan.steps.items():
        action = functions.actions.get((name, CommandKind.ACTION))
        if action is None:  # a child saga: no command topic, its own contracts
            continue
        try:
            result = typing.get_type_hints(action.fn).get("return", Any)
        except (NameError, TypeError):  # compilation resolved it already; be safe
            result = Any
        steps[name] = (spec.queue, result)
    # A TypeAdapter keeps the annotation it was built from; an untyped signal's is Any.
    signals = {name: getattr(a, "_type", Any) for name, a in plan.types.signals.items()}
    return saga_contracts(
        versions.name,
        version=plan.version,
        prefix=prefix,
        input_type=plan.types.input_model,
        steps=steps,
        signals=signals,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the registry says of one contract: registered (with its id) or compatible."""

    subject: str
    compatible: bool | None
    """None when the subject has no version yet."""
    schema_id: int | None = None


def register_contracts(
    registry: SchemaRegistryClient, contracts: list[Contract], compatibility: str
) -> list[Verdict]:
    """Set each subject's compatibility rule, then register its schema (refused if it breaks it)."""
    verdicts = []
    for contract in contracts:
        registry.set_compatibility(contract.subject, compatibility)
        schema_id = registry.register(contract.subject, contract.schema_text)
        verdicts.append(Verdict(contract.subject, True, schema_id))
    return verdicts


def check_contracts(registry: SchemaRegistryClient, contracts: list[Contract]) -> list[Verdict]:
    """Whether each contract may be registered next to what its subject holds."""
    return [
        Verdict(c.subject, registry.check_compatibility(c.subject, c.schema_text))
        for c in contracts
    ]
