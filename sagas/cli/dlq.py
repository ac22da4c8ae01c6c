"""``sagas dlq list|redrive|discard``: what is in a saga's dead-letter queue, putting it
back, giving it up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from sagas.cli.exit_codes import CommandError, ExitCode
from sagas.cli.loading import bootstrap_option, prefix_option, reachable_kafka, saga_name
from sagas.cli.output import echo_json, output_option
from sagas.cli.progress import progress
from sagas.config import KafkaSettings
from topics.dead_letter_headers import DeadLetterState

if TYPE_CHECKING:
    from sagas.client.dead_letters import DeadLetter


def _name(saga_ref: str) -> str:
    target = saga_name(saga_ref)
    return target if isinstance(target, str) else target.name


@click.group()
def dlq() -> None:
    """Inspect, redrive and discard a saga's dead-letter queue."""


@dlq.command("list")
@click.argument("saga_ref", metavar="SAGA")
@click.option(
    "--state",
    "only",
    type=click.Choice([s.value for s in DeadLetterState]),
    default=None,
    help="Only the records in this state.",
)
@output_option
@bootstrap_option
@prefix_option
def dlq_list(
    saga_ref: str, only: str | None, output: str, bootstrap_servers: str | None,
    topic_prefix: str | None,
) -> None:  # fmt: skip
    """Print every dead-lettered record: where, its state (dead, redriven, discarded),
    which workflow, why."""
    from sagas.client.dead_letters import read_dead_letters

    name = _name(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    with progress(f"reading the dead-letter queue of {name}"):
        letters = [
            letter
            for letter in read_dead_letters(kafka, name)
            if only is None or letter.state.value == only
        ]
    if output == "json":
        echo_json(
            [
                {
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "state": letter.state.value,
                    "workflow_id": letter.workflow_id,
                    "reason": letter.reason,
                    "exception": letter.exception,
                    "headers": letter.headers,
                }
                for letter in letters
            ]
        )
        return
    for letter in letters:
        click.echo(
            f"{letter.partition}:{letter.offset}  {letter.state.value:<9}  "
            f"workflow={letter.workflow_id or '-'}  reason={letter.reason}  {letter.exception}"
        )
    dead = sum(letter.state is DeadLetterState.DEAD for letter in letters)
    click.echo(f"{len(letters)} record(s), {dead} dead", err=True)


def _selection(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        (
            click.option("--workflow", "workflow_id", default=None, help="Only this workflow's."),
            click.option(
                "--at",
                "position",
                default=None,
                metavar="PARTITION:OFFSET",
                help="Only the record at this DLQ position.",
            ),
            click.option("--all", "everything", is_flag=True, help="Every dead record."),
            bootstrap_option,
            prefix_option,
        )
    ):
        command = option(command)
    return command


def _chosen(
    kafka: KafkaSettings, name: str, workflow_id: str | None, position: str | None,
    everything: bool,
) -> list[DeadLetter]:  # fmt: skip
    """The dead records the options select; a record chosen by ``--at`` that is no longer
    dead is an error naming its state."""
    from sagas.client.dead_letters import read_dead_letters

    if sum(x is not None and x is not False for x in (workflow_id, position, everything)) != 1:
        raise click.UsageError("choose exactly one of --workflow, --at and --all")
    at: tuple[int, int] | None = None
    if position is not None:
        partition, _, offset = position.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise click.BadParameter(f"{position!r} is not PARTITION:OFFSET", param_hint="--at")
        at = (int(partition), int(offset))
    with progress(f"reading the dead-letter queue of {name}"):
        letters = [
            letter
            for letter in read_dead_letters(kafka, name)
            if everything
            or (workflow_id is not None and letter.workflow_id == workflow_id)
            or (at is not None and (letter.partition, letter.offset) == at)
        ]
    if not letters:
        raise CommandError("no dead-lettered record matches", ExitCode.NOT_FOUND)
    dead = [letter for letter in letters if letter.state is DeadLetterState.DEAD]
    if not dead:
        states = sorted({letter.state.value for letter in letters})
        raise CommandError(
            f"no dead record matches: the matching record(s) were {' or '.join(states)} already"
        )
    return dead


@dlq.command("redrive")
@click.argument("saga_ref", metavar="SAGA")
@_selection
def dlq_redrive(
    saga_ref: str, workflow_id: str | None, position: str | None, everything: bool,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Put dead records back: their workflows are unparked and go on. A record redriven
    or discarded before is not sent again."""
    from sagas.client.dead_letters import redrive

    name = _name(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    letters = _chosen(kafka, name, workflow_id, position, everything)
    click.echo(f"redrove {redrive(kafka, name, letters)} record(s)")


@dlq.command("discard")
@click.argument("saga_ref", metavar="SAGA")
@_selection
def dlq_discard(
    saga_ref: str, workflow_id: str | None, position: str | None, everything: bool,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Give dead records up for good: their workflows are unparked without them (recorded
    as dead_letter_discarded in the event log) and what waited behind them is applied."""
    from sagas.client.dead_letters import discard

    name = _name(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    letters = _chosen(kafka, name, workflow_id, position, everything)
    click.echo(f"discarded {discard(kafka, name, letters)} record(s)")
