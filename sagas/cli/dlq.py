"""``sagas dlq list|redrive``: what is in a saga's dead-letter queue, and putting it back."""

from __future__ import annotations

import click

from sagas.cli.exit_codes import CommandError, ExitCode
from sagas.cli.loading import bootstrap_option, prefix_option, reachable_kafka, saga_name
from sagas.cli.output import echo_json, output_option
from sagas.cli.progress import progress


def _name(saga_ref: str) -> str:
    target = saga_name(saga_ref)
    return target if isinstance(target, str) else target.name


@click.group()
def dlq() -> None:
    """Inspect and redrive a saga's dead-letter queue."""


@dlq.command("list")
@click.argument("saga_ref", metavar="SAGA")
@output_option
@bootstrap_option
@prefix_option
def dlq_list(
    saga_ref: str, output: str, bootstrap_servers: str | None, topic_prefix: str | None
) -> None:
    """Print every dead-lettered record: where, which workflow, why."""
    from sagas.client.dead_letters import read_dead_letters

    name = _name(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    with progress(f"reading the dead-letter queue of {name}"):
        letters = read_dead_letters(kafka, name)
    if output == "json":
        echo_json(
            [
                {
                    "partition": letter.partition,
                    "offset": letter.offset,
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
            f"{letter.partition}:{letter.offset}  workflow={letter.workflow_id or '-'}  "
            f"reason={letter.reason}  {letter.exception}"
        )
    click.echo(f"{len(letters)} record(s)", err=True)


@dlq.command("redrive")
@click.argument("saga_ref", metavar="SAGA")
@click.option("--workflow", "workflow_id", default=None, help="Only this workflow's records.")
@click.option(
    "--at",
    "position",
    default=None,
    metavar="PARTITION:OFFSET",
    help="Only the record at this DLQ position.",
)
@click.option("--all", "everything", is_flag=True, help="Every record in the DLQ.")
@bootstrap_option
@prefix_option
def dlq_redrive(
    saga_ref: str, workflow_id: str | None, position: str | None, everything: bool,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Put dead-lettered records back: their workflows are unparked and go on."""
    from sagas.client.dead_letters import read_dead_letters, redrive

    if sum(x is not None and x is not False for x in (workflow_id, position, everything)) != 1:
        raise click.UsageError("choose exactly one of --workflow, --at and --all")
    at: tuple[int, int] | None = None
    if position is not None:
        partition, _, offset = position.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise click.BadParameter(f"{position!r} is not PARTITION:OFFSET", param_hint="--at")
        at = (int(partition), int(offset))
    name = _name(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
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
    click.echo(f"redrove {redrive(kafka, name, letters)} record(s)")
