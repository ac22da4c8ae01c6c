"""``sagas start|status|result|signal|cancel|terminate|history``: one workflow at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import click

from sagas.cli.loading import bootstrap_option, kafka_settings, prefix_option, saga_name
from sagas.client import SagaClient
from sagas.errors import SagaError
from sagas.events import StatusRecord


@contextmanager
def _client(bootstrap_servers: str | None, topic_prefix: str | None) -> Iterator[SagaClient]:
    client = SagaClient(kafka_settings(bootstrap_servers, topic_prefix))
    try:
        yield client
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        client.close()


def _json_argument(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from exc


def _print_status(record: StatusRecord) -> None:
    data = asdict(record)
    data["status"] = record.status.value
    for field in ("result",):
        if data[field] is not None:
            data[field] = json.loads(data[field])
    click.echo(json.dumps(data, indent=2, default=str))


saga_argument = click.argument("saga_ref", metavar="SAGA")
workflow_argument = click.argument("workflow_id")


@click.command()
@saga_argument
@click.option("--input", "input_json", required=True, help="The saga input as JSON.")
@click.option("--id", "workflow_id", default=None, help="Workflow id (default: a new one).")
@click.option("--wait/--no-wait", default=False, help="Wait for the workflow to end.")
@click.option("--timeout", type=float, default=300.0, show_default=True)
@bootstrap_option
@prefix_option
def start(
    saga_ref: str, input_json: str, workflow_id: str | None, wait: bool, timeout: float,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Start a workflow of SAGA (MODULE:SAGA validates the input; a name sends it as is)."""
    data = _json_argument(input_json, "--input")
    if not isinstance(data, dict):
        raise click.BadParameter("--input must be a JSON object")
    saga = saga_name(saga_ref)
    with _client(bootstrap_servers, topic_prefix) as client:
        wid = client.start(saga, data, workflow_id=workflow_id)
        click.echo(wid)
        if wait:
            _print_status(client.result(saga, wid, timeout))


@click.command()
@saga_argument
@workflow_argument
@bootstrap_option
@prefix_option
def status(
    saga_ref: str, workflow_id: str, bootstrap_servers: str | None, topic_prefix: str | None
) -> None:
    """Print the latest status of a workflow."""
    with _client(bootstrap_servers, topic_prefix) as client:
        _print_status(client.status(saga_name(saga_ref), workflow_id))


@click.command()
@saga_argument
@workflow_argument
@click.option("--timeout", type=float, default=300.0, show_default=True)
@bootstrap_option
@prefix_option
def result(
    saga_ref: str, workflow_id: str, timeout: float,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Wait for a workflow to end and print its final status."""
    with _client(bootstrap_servers, topic_prefix) as client:
        _print_status(client.result(saga_name(saga_ref), workflow_id, timeout))


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
    with _client(bootstrap_servers, topic_prefix) as client:
        client.signal(saga_name(saga_ref), workflow_id, signal_name, data)


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
    with _client(bootstrap_servers, topic_prefix) as client:
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
    with _client(bootstrap_servers, topic_prefix) as client:
        client.terminate(saga_name(saga_ref), workflow_id, reason)


@click.command()
@saga_argument
@workflow_argument
@click.option(
    "--output",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="Lines for people, or JSON lines that the test kit's replay_history reads.",
)
@bootstrap_option
@prefix_option
def history(
    saga_ref: str, workflow_id: str, output: str, bootstrap_servers: str | None,
    topic_prefix: str | None,
) -> None:  # fmt: skip
    """Print every event of a workflow in order, read from the saga's event log."""
    from processors.log_reading import CONNECT_TIMEOUT_S, client_config
    from sagas.client.history import describe, read_history
    from schemas.history_lines import dump_line

    target = saga_name(saga_ref)
    name = target if isinstance(target, str) else target.name
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    try:
        events = read_history(
            kafka, name, workflow_id, CONNECT_TIMEOUT_S, config=client_config(kafka)
        )
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    if not events:
        raise click.ClickException(f"no events of workflow {workflow_id!r} in saga {name!r}")
    for event in events:
        click.echo(dump_line(event) if output == "jsonl" else describe(event))
