"""``sagas start|status|result|signal|update|cancel|terminate|history``: one workflow at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from sagas.cli.exit_codes import CommandError, ExitCode
from sagas.cli.loading import bootstrap_option, prefix_option, reachable_kafka, saga_name
from sagas.cli.output import echo_json, output_option
from sagas.cli.progress import progress
from sagas.client import SagaClient, StartResult
from sagas.events import StatusRecord


@contextmanager
def _client(bootstrap_servers: str | None, topic_prefix: str | None) -> Iterator[SagaClient]:
    client = SagaClient(reachable_kafka(bootstrap_servers, topic_prefix))
    try:
        yield client
    finally:
        client.close()


def _json_argument(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from exc


def _status_data(record: StatusRecord) -> dict[str, Any]:
    data = asdict(record)
    data["status"] = record.status.value
    if data["result"] is not None:
        data["result"] = json.loads(data["result"])
    return data


def _print_status(record: StatusRecord, output: str = "text") -> None:
    if output == "json":
        echo_json(_status_data(record))
        return
    for name, value in _status_data(record).items():
        if value is None or value in ([], (), {}):
            continue
        if name.endswith("_ms") and isinstance(value, int):
            name, value = name[:-3], datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()
        elif isinstance(value, dict | list | tuple):
            value = json.dumps(value, default=str)
        click.echo(f"{name + ':':<16}{value}")


def _result(client: SagaClient, saga: Any, workflow_id: str, timeout: float) -> StatusRecord:
    with progress(f"waiting for workflow {workflow_id} to end"):
        return client.result(saga, workflow_id, timeout)


saga_argument = click.argument("saga_ref", metavar="SAGA")
workflow_argument = click.argument("workflow_id")


@click.command()
@saga_argument
@click.option("--input", "input_json", required=True, help="The saga input as JSON.")
@click.option("--id", "workflow_id", default=None, help="Workflow id (default: a new one).")
@click.option("--wait/--no-wait", default=False, help="Wait for the workflow to end.")
@click.option("--timeout", type=float, default=300.0, show_default=True)
@click.option(
    "--signal", "signal_name", default=None,
    help="Also deliver this signal, in the same record (starts the workflow unless it exists).",
)  # fmt: skip
@click.option("--payload", default=None, help="The --signal's data as JSON.")
@output_option
@bootstrap_option
@prefix_option
def start(
    saga_ref: str, input_json: str, workflow_id: str | None, wait: bool, timeout: float,
    signal_name: str | None, payload: str | None,
    output: str, bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Start a workflow of SAGA (MODULE:SAGA validates the input; a name sends it as is)."""
    data = _json_argument(input_json, "--input")
    if not isinstance(data, dict):
        raise click.BadParameter("--input must be a JSON object")
    if signal_name is None and payload is not None:
        raise click.BadParameter("--payload goes with --signal")
    if signal_name is not None and workflow_id is None:
        raise click.BadParameter("--signal needs --id: it signals the workflow of that id")
    saga = saga_name(saga_ref)
    with _client(bootstrap_servers, topic_prefix) as client:
        outcome: StartResult | None = None
        if signal_name is not None and workflow_id is not None:
            signal_data = _json_argument(payload, "--payload")
            wid = client.signal_with_start(saga, workflow_id, data, signal_name, signal_data)
            said = f"started unless it existed, and signalled {signal_name!r}"
        else:
            if workflow_id is None:
                outcome = StartResult(client.start(saga, data), created=True)
            else:
                outcome = client.start_or_get(saga, data, workflow_id=workflow_id)
            wid = outcome.workflow_id
            said = "started" if outcome.existing is None else (
                f"already exists (status {outcome.existing.status.value}); the input was not used"
            )  # fmt: skip
        if not wait:
            if output == "json":
                echo_json(
                    _start_data(outcome)
                    if outcome is not None
                    else {"workflow_id": wid, "signal": signal_name}
                )
            else:
                click.echo(wid)
                click.echo(f"{wid} {said}", err=True)
            return
        if output != "json":
            click.echo(wid)
            click.echo(f"{wid} {said}", err=True)
        _print_status(_result(client, saga, wid, timeout), output)


def _start_data(outcome: StartResult) -> dict[str, Any]:
    existing = outcome.existing
    return {
        "workflow_id": outcome.workflow_id,
        "created": outcome.created,
        "status": None if existing is None else existing.status.value,
    }


@click.command()
@saga_argument
@workflow_argument
@output_option
@bootstrap_option
@prefix_option
def status(
    saga_ref: str, workflow_id: str, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Print the latest status of a workflow (exit code 3 if there is none)."""
    with _client(bootstrap_servers, topic_prefix) as client, progress("reading statuses"):
        record = client.status(saga_name(saga_ref), workflow_id)
    _print_status(record, output)


@click.command()
@saga_argument
@workflow_argument
@click.option("--timeout", type=float, default=300.0, show_default=True)
@output_option
@bootstrap_option
@prefix_option
def result(
    saga_ref: str, workflow_id: str, timeout: float, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Wait for a workflow to end and print its final status (3: no such workflow,
    5: it did not end in time)."""
    with _client(bootstrap_servers, topic_prefix) as client:
        record = _result(client, saga_name(saga_ref), workflow_id, timeout)
    _print_status(record, output)


@click.command()
@saga_argument
@workflow_argument
@click.argument("signal_name", metavar="SIGNAL")
@click.option("--payload", default=None, help="The signal's data as JSON.")
@bootstrap_option
@prefix_option
def signal(
    saga_ref: str, workflow_id: str, signal_name: str, payload: str | None,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Send SIGNAL to a workflow."""
    data = _json_argument(payload, "--payload")
    with (
        _client(bootstrap_servers, topic_prefix) as client,
        progress(f"sending {signal_name!r} to {workflow_id}"),
    ):
        client.signal(saga_name(saga_ref), workflow_id, signal_name, data)


@click.command()
@saga_argument
@workflow_argument
@click.argument("update_name", metavar="UPDATE")
@click.option("--payload", default=None, help="The update's data as JSON.")
@click.option("--update-id", default=None, help="Send it again under this id: applied once.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@bootstrap_option
@prefix_option
def update(
    saga_ref: str, workflow_id: str, update_name: str, payload: str | None,
    update_id: str | None, timeout: float,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Apply UPDATE to a workflow and print its result as JSON, once the workflow has it."""
    data = _json_argument(payload, "--payload")
    with (
        _client(bootstrap_servers, topic_prefix) as client,
        progress(f"applying {update_name!r} to {workflow_id}"),
    ):
        outcome = client.update(
            saga_name(saga_ref), workflow_id, update_name, data,
            update_id=update_id, timeout=timeout,
        )  # fmt: skip
    echo_json(outcome)


@click.command()
@saga_argument
@workflow_argument
@click.option("--reason", default="cancelled from the command line", show_default=True)
@bootstrap_option
@prefix_option
def cancel(
    saga_ref: str, workflow_id: str, reason: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Cancel a workflow: compensate what it completed, end CANCELLED."""
    with _client(bootstrap_servers, topic_prefix) as client, progress(f"cancelling {workflow_id}"):
        client.cancel(saga_name(saga_ref), workflow_id, reason)


@click.command()
@saga_argument
@workflow_argument
@click.option("--reason", required=True, help="Why the workflow is stopped (recorded).")
@bootstrap_option
@prefix_option
def terminate(
    saga_ref: str, workflow_id: str, reason: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Stop a workflow at once, without compensation."""
    with _client(bootstrap_servers, topic_prefix) as client, progress(f"terminating {workflow_id}"):
        client.terminate(saga_name(saga_ref), workflow_id, reason)


@click.command()
@saga_argument
@workflow_argument
@click.option(
    "--output",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    show_default=True,
    help="Lines for people, a JSON array for scripts, or JSON lines that the test kit's"
    " replay_history reads.",
)
@bootstrap_option
@prefix_option
def history(
    saga_ref: str, workflow_id: str, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Print every event of a workflow in order, read from the saga's event log."""
    from sagas.client.history import describe, read_history
    from schemas.history_lines import dump_line

    target = saga_name(saga_ref)
    name = target if isinstance(target, str) else target.name
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    with progress(f"reading the event log of {name}"):
        events = read_history(kafka, name, workflow_id)
    if not events:
        raise CommandError(
            f"no events of workflow {workflow_id!r} in saga {name!r}", ExitCode.NOT_FOUND
        )
    if output == "json":
        echo_json([_event_data(event) for event in events])
        return
    for event in events:
        click.echo(dump_line(event) if output == "jsonl" else describe(event))


def _event_data(event: Any) -> dict[str, Any]:
    data = asdict(event)
    data["type"] = event.type.value
    data["origin"] = event.origin.value
    return data
