"""The typed contracts of a saga's steps and signals: Avro schemas under registry subjects.

A command carries the saga's input, and an answer its step's result, as JSON text
(``Command.input``, ``Event.payload``). Each of those texts has a contract: the Avro
schema of the pydantic type it is made from, registered under a subject of its own, so
that a participant in Go or Java knows the fields of a step's input and of the result it
must send back. Subjects (``<prefix>`` is the topic prefix, ``<n>`` the saga version):

- ``<prefix><saga>.v<n>.step.<step>.input-value`` — the saga input a step's command carries;
- ``<prefix><saga>.v<n>.step.<step>.result-value`` — the result its answer carries;
- ``<prefix><saga>.v<n>.signal.<signal>-value`` — the data of a signal the saga waits for.

Several versions of a saga run side by side and a command names its version, so each
version has subjects of its own: a new version may change a step's types in ways the
old one's participants could not read, and a participant picks the contract of the
version a command names. A subject's compatibility rule guards a version's contract
against changing under the workflows already running on it.

A step or signal typed ``Any`` has no contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sagas.compact_json import compact_json
from schemas.avro_types import AvroSchema, avro_schema

ContractRole = Literal["input", "result", "signal"]

NAMESPACE = "io.kafkasagas.contracts"
"""Records of a saga's contracts live in ``io.kafkasagas.contracts.<saga>``."""


@dataclass(frozen=True, slots=True)
class Contract:
    """One step's input or result, or one signal's data, with its Avro schema and subject."""

    subject: str
    role: ContractRole
    name: str
    """The step's or the signal's name."""
    schema: AvroSchema
    queue: str | None = None
    """The queue whose command topic carries the step (None for a signal)."""
    version: int = 1
    """The saga version the contract belongs to."""

    @property
    def schema_text(self) -> str:
        """The schema as compact JSON text, the form a registry stores."""
        return compact_json(self.schema)

    @property
    def file_name(self) -> str:
        """The ``.avsc`` file the contract is exported to (its subject without ``-value``)."""
        return self.subject.removesuffix("-value") + ".avsc"


def step_subject(
    prefix: str, saga: str, version: int, step: str, role: Literal["input", "result"]
) -> str:
    """The registry subject of a step's input or result in one saga version."""
    return f"{prefix}{saga}.v{version}.step.{step}.{role}-value"


def signal_subject(prefix: str, saga: str, version: int, signal: str) -> str:
    """The registry subject of a signal's data in one saga version."""
    return f"{prefix}{saga}.v{version}.signal.{signal}-value"


def contract_namespace(saga: str) -> str:
    """The Avro namespace of a saga's records (a saga name may hold characters Avro refuses)."""
    return f"{NAMESPACE}.{re.sub(r'[^A-Za-z0-9_]', '_', saga)}"


def saga_contracts(
    saga: str,
    *,
    version: int,
    prefix: str,
    input_type: Any,
    steps: Mapping[str, tuple[str, Any]],
    signals: Mapping[str, Any],
) -> list[Contract]:
    """Every contract of one version of a saga.

    ``steps`` maps each step served by a queue to ``(queue, result annotation)``;
    ``signals`` maps each signal waited for to its payload annotation. ``Any``
    results and payloads get no contract.
    """
    namespace = contract_namespace(saga)
    contracts = []
    for step, (queue, result) in steps.items():
        input_schema = avro_schema(input_type, name=f"{_camel(step)}Input", namespace=namespace)
        subject = step_subject(prefix, saga, version, step, "input")
        contracts.append(Contract(subject, "input", step, input_schema, queue, version))
        if result is not Any:
            schema = avro_schema(result, name=f"{_camel(step)}Result", namespace=namespace)
            subject = step_subject(prefix, saga, version, step, "result")
            contracts.append(Contract(subject, "result", step, schema, queue, version))
    for signal, payload in signals.items():
        if payload is Any or payload is None:
            continue
        schema = avro_schema(payload, name=f"{_camel(signal)}Signal", namespace=namespace)
        subject = signal_subject(prefix, saga, version, signal)
        contracts.append(Contract(subject, "signal", signal, schema, None, version))
    return contracts


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))
