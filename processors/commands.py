"""The command records a transition's command orders become, with where answers go.

The plan decides which commands to send but names no topic: the saga processor (and
the test kit, which runs the processor's path) says which topic a command's answer
is produced to, the saga's event log as ``topics.naming`` names it.
"""

from __future__ import annotations

from sagas.engine.transition import Transition
from sagas.events import Command, idempotency_key
from sagas.payloads import join_object


def command_records(transition: Transition, reply_topic: str) -> list[tuple[str, Command]]:
    """(queue name, command) pairs to publish, whose answers go to ``reply_topic``."""
    if not transition.orders:
        return []
    state = transition.state
    results = join_object({n: state.steps[n].result or "null" for n in state.completed})
    signals = join_object(state.signals) if state.signals else None
    commands: list[tuple[str, Command]] = []
    run_id = state.run_id if state.previous_run_id is not None else None
    for order in transition.orders:
        decision = order.decision
        step = decision.step or ""
        kind = order.kind
        commands.append(
            (
                order.queue,
                Command(
                    command_id=f"{state.workflow_id}/{step}/{kind.value}/{decision.attempt}",
                    workflow_id=state.workflow_id,
                    saga=decision.saga,
                    version=state.version,
                    step=step,
                    attempt=decision.attempt,
                    kind=kind,
                    idempotency_key=idempotency_key(state.workflow_id, step, kind, run_id),
                    reply_topic=reply_topic,
                    time_ms=decision.time_ms,
                    deadline_ms=order.deadline_ms,
                    input=state.input,
                    results=results,
                    signals=signals,
                    heartbeat_details=state.heartbeats.get(step),
                    heartbeat_timeout_ms=order.heartbeat_ms,
                    start_deadline_ms=order.start_deadline_ms,
                ),
            )
        )
    return commands
