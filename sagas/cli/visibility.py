"""``sagas describe|list|query``: ask the saga processors about workflows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from sagas.cli.exit_codes import command_error
from sagas.cli.loading import bootstrap_option, prefix_option, reachable_kafka, saga_name
from sagas.client import SagaClient
from sagas.errors import SagaError
from sagas.workflow_search import AttributeFilter, WorkflowSearch


def _time_ms(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not an ISO time (2026-12-01T10:00): {exc}") from exc


def _run(bootstrap_servers: str | None, topic_prefix: str | None, ask: Any) -> Any:
    client = SagaClient(reachable_kafka(bootstrap_servers, topic_prefix))
    try:
        return ask(client)
    except SagaError as exc:
        raise command_error(exc) from exc
    finally:
        client.close()


def table_lines(items: list[dict[str, Any]]) -> list[str]:
    """A list page as ``sagas list`` prints it: a header, then a line per workflow, times
    in local time to the second (ENDED is empty while a workflow runs)."""
    lines = [
        f"{'WORKFLOW':<36} {'STATUS':<12} {'STARTED':<19} {'ENDED':<19} {'STEPS':<24} ATTRIBUTES"
    ]
    for item in items:
        ended = _local(item["ended_ms"]) if item.get("ended_ms") is not None else ""
        steps = ",".join(item["current_steps"])
        attributes = " ".join(f"{k}={v}" for k, v in item["attributes"].items())
        lines.append(
            f"{item['workflow_id']:<36} {item['status']:<12} {_local(item['started_ms']):<19} "
            f"{ended:<19} {steps:<24} {attributes}".rstrip()
        )
    return lines


def _local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).isoformat(timespec="seconds")


@click.command()
@click.argument("saga_ref", metavar="SAGA")
@click.argument("workflow_id")
@bootstrap_option
@prefix_option
def describe(
    saga_ref: str, workflow_id: str, bootstrap_servers: str | None, topic_prefix: str | None
) -> None:
    """Show one workflow as its processor holds it: steps, attempts, timers, input, results."""
    found = _run(
        bootstrap_servers, topic_prefix, lambda c: c.describe(saga_name(saga_ref), workflow_id)
    )
    click.echo(json.dumps(found, indent=2))


@click.command(name="list")
@click.argument("saga_ref", metavar="SAGA")
@click.option("--status", "statuses", multiple=True, help="Only these statuses (repeatable).")
@click.option("--step", default=None, help="Only workflows at this step, sleep or wait.")
@click.option("--version", type=int, default=None, help="Only this saga version.")
@click.option("--parked/--not-parked", default=None, help="Only parked (or unparked) ones.")
@click.option(
    "--where",
    multiple=True,
    help="A search attribute condition: attr=value, attr>=v, attr<v ... (repeatable).",
)
@click.option("--since", default=None, help="Started at or after this ISO time.")
@click.option("--until", default=None, help="Started before this ISO time.")
@click.option("--ended-since", default=None, help="Ended at or after this ISO time.")
@click.option("--ended-until", default=None, help="Ended before this ISO time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", default=None, help="Continue after a previous page (its cursor).")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@bootstrap_option
@prefix_option
def list_workflows(
    saga_ref: str, statuses: tuple[str, ...], step: str | None, version: int | None,
    parked: bool | None, where: tuple[str, ...], since: str | None, until: str | None,
    ended_since: str | None, ended_until: str | None, limit: int, cursor: str | None,
    output: str, bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """List a saga's workflows, newest first, filtered by status, step, attributes and time.

    Times are ISO (2026-12-01T10:00, local time unless it names its zone:
    2026-12-01T10:00Z); an ended-time filter lists only workflows that have ended.
    """
    try:
        search = WorkflowSearch(
            status=tuple(s.upper() for s in statuses), version=version, step=step,
            parked=parked, started_since_ms=_time_ms(since, "--since"),
            started_until_ms=_time_ms(until, "--until"),
            ended_since_ms=_time_ms(ended_since, "--ended-since"),
            ended_until_ms=_time_ms(ended_until, "--ended-until"),
            where=tuple(AttributeFilter.parse(text) for text in where),
            limit=limit, cursor=cursor,
        )  # fmt: skip
    except SagaError as exc:
        raise click.BadParameter(str(exc)) from exc
    page = _run(bootstrap_servers, topic_prefix, lambda c: c.list(saga_name(saga_ref), search))
    if output == "json":
        for item in page.items:
            click.echo(json.dumps(item))
    else:
        for line in table_lines(page.items):
            click.echo(line)
    if page.next_cursor is not None:
        click.echo(f"next page: --cursor '{page.next_cursor}'", err=True)


@click.command()
@click.argument("saga_ref", metavar="SAGA")
@click.argument("workflow_id")
@click.argument("name")
@bootstrap_option
@prefix_option
def query(
    saga_ref: str, workflow_id: str, name: str, bootstrap_servers: str | None,
    topic_prefix: str | None,
) -> None:  # fmt: skip
    """Evaluate the saga's query NAME (``@saga.query``) on one workflow."""
    value = _run(
        bootstrap_servers, topic_prefix, lambda c: c.query(saga_name(saga_ref), workflow_id, name)
    )
    click.echo(json.dumps(value, indent=2))
