"""The commands a killed step worker leaves behind, and how the next worker gets them.

On the broker a worker commits a command's offset only after its answer is acknowledged,
so the command a killed worker was running is delivered again to the worker that takes
its partition over, once the group has noticed the death (the session timeout), and so
is every command of that partition produced meanwhile. The test kit keeps the killed
command, and the later commands of its workflow, until then; it knows no partitions, so
other workflows' commands run on as if they were on other partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagas.events import Command


@dataclass(slots=True)
class Handover:
    """A killed worker's command and the commands of its workflow held until a new owner."""

    due_ms: int
    """When the next worker has the partition and gets the commands."""
    killed: Command
    held: list[Command] = field(default_factory=list)
    """Commands of the same workflow produced after the death, in order."""

    def deliveries(self) -> list[Command]:
        """What the new owner runs, in partition order, without the stale attempts.

        The worker skips an attempt that a later attempt of the same step and kind, in
        the same batch, supersedes: its answer would be ignored, and it would start from
        where that attempt began instead of from the later attempt's heartbeat details.
        """
        batch = [self.killed, *self.held]
        return [
            command
            for i, command in enumerate(batch)
            if not any(
                later.step == command.step
                and later.kind is command.kind
                and later.attempt > command.attempt
                for later in batch[i + 1 :]
            )
        ]
