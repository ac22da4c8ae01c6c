"""An append-only file of every action and compensation attempt, shared across processes.

It stands in for the participant services: each attempt appends one JSON line with its
idempotency key, attempt number, outcome and (when it took effect) the effect. Reading
it back dedupes by idempotency key the way an idempotent service would, and keeps the
attempt counts so tests can see at-least-once re-runs.

Lines are written with one ``write`` on an ``O_APPEND`` descriptor: each is appended
whole even with several writer processes, and a SIGKILL cannot lose a line the kernel
already has. No fsync, because the tests kill processes, not the machine.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

LEDGER_ENV = "SAGAS_TEST_LEDGER"
"""The environment variable naming the ledger file the participants append to."""

APPLIED = "applied"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of the ledger: one run of an action or a compensation."""

    key: str
    workflow_id: str
    step: str
    kind: str
    attempt: int
    outcome: str
    effect: str | None
    pid: int


def ledger_path() -> Path:
    """The ledger file named by :data:`LEDGER_ENV`; a clear error when it is not set."""
    value = os.environ.get(LEDGER_ENV)
    if not value:
        raise RuntimeError(f"set {LEDGER_ENV} to the effect ledger file before running steps")
    return Path(value)


def append(attempt: Attempt) -> None:
    """Append one attempt as a single line."""
    line = json.dumps(
        {
            "key": attempt.key,
            "wid": attempt.workflow_id,
            "step": attempt.step,
            "kind": attempt.kind,
            "attempt": attempt.attempt,
            "outcome": attempt.outcome,
            "effect": attempt.effect,
            "pid": attempt.pid,
        },
        separators=(",", ":"),
    )
    fd = os.open(ledger_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read(path: Path) -> list[Attempt]:
    """Every attempt in the file, in the order they were appended."""
    if not path.exists():
        return []
    attempts = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        attempts.append(
            Attempt(
                key=data["key"],
                workflow_id=data["wid"],
                step=data["step"],
                kind=data["kind"],
                attempt=data["attempt"],
                outcome=data["outcome"],
                effect=data["effect"],
                pid=data["pid"],
            )
        )
    return attempts


def count_lines(path: Path) -> int:
    """How many attempts the file holds so far (cheap enough to poll)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


@dataclass
class LedgerView:
    """The ledger as the idempotent services see it: one effect per key, plus the tries."""

    applied: dict[str, str] = field(default_factory=dict)
    """The first effect applied per idempotency key (later ones are deduped)."""
    effects_seen: dict[str, set[str]] = field(default_factory=dict)
    """Every distinct effect an attempt tried to apply per key: more than one is a bug."""
    applications: Counter[str] = field(default_factory=Counter)
    """How many attempts tried to apply an effect per key (re-runs after crashes count)."""
    attempts: dict[str, set[int]] = field(default_factory=dict)
    """The attempt numbers that ran per key, failed or not."""
    runs: Counter[tuple[str, int]] = field(default_factory=Counter)
    """How often each (key, attempt) ran: more than once only when a process died."""
    first_applied_order: dict[str, list[str]] = field(default_factory=dict)
    """Per workflow, the keys in the order their effect was first applied."""


def view(attempts: list[Attempt]) -> LedgerView:
    """Fold the attempts into what the services ended up with."""
    result = LedgerView()
    for item in attempts:
        result.attempts.setdefault(item.key, set()).add(item.attempt)
        result.runs[item.key, item.attempt] += 1
        if item.outcome != APPLIED or item.effect is None:
            continue
        result.applications[item.key] += 1
        result.effects_seen.setdefault(item.key, set()).add(item.effect)
        if item.key not in result.applied:
            result.applied[item.key] = item.effect
            result.first_applied_order.setdefault(item.workflow_id, []).append(item.key)
    return result
