"""``sagas topics``: provision a saga's topics, and show them as the cluster has them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sagas.cli.contracts import COMPATIBILITY_LEVELS, contracts_of, register_contracts
from sagas.cli.loading import (
    bootstrap_option,
    load_saga,
    prefix_option,
    reachable_kafka,
)
from sagas.cli.output import echo_json, output_option
from sagas.cli.progress import progress
from sagas.errors import SagaError

if TYPE_CHECKING:
    from topics.description import TopicDescription
    from topics.specs import TopicSettings


@click.group()
def topics() -> None:
    """Provision and inspect a saga's topics."""


def _topic_settings_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of ``topics create`` and ``topics describe`` that shape the specs."""
    options = (
        click.option("--partitions", type=int, default=None, help="Partitions of each topic."),
        click.option(
            "--replication-factor",
            type=int,
            default=None,
            help="Replicas of each partition (default: the cluster's default.replication.factor,"
            " or min(3, brokers) when that is 1 on several brokers).",
        ),
        click.option(
            "--min-insync-replicas",
            type=int,
            default=None,
            help="Replicas that must acknowledge a write (default: replication factor - 1,"
            " at least 1).",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _topic_settings(
    partitions: int | None, replication_factor: int | None, min_insync_replicas: int | None
) -> TopicSettings:
    from pydantic import ValidationError

    from topics.specs import TopicSettings

    overrides = {
        name: value
        for name, value in (
            ("partitions", partitions),
            ("replication_factor", replication_factor),
            ("min_insync_replicas", min_insync_replicas),
        )
        if value is not None
    }
    try:
        return TopicSettings(**overrides)
    except ValidationError as exc:
        # pydantic's text spans several lines; a user wants the one that says what is wrong.
        errors = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise click.ClickException(f"invalid topic settings: {errors}") from exc


@topics.command("create")
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@_topic_settings_options
@click.option(
    "--schema-compatibility",
    type=click.Choice(COMPATIBILITY_LEVELS, case_sensitive=False),
    envvar="SAGAS_SCHEMA_COMPATIBILITY",
    default="BACKWARD",
    show_default=True,
    help="Compatibility rule of each step contract's subject [env SAGAS_SCHEMA_COMPATIBILITY].",
)
@output_option
@bootstrap_option
@prefix_option
def topics_create(
    saga_ref: str, partitions: int | None, replication_factor: int | None,
    min_insync_replicas: int | None, schema_compatibility: str, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Create the topics of MODULE:SAGA that are missing (idempotent).

    With a schema registry (SAGAS_SCHEMA_REGISTRY_URL), also register the saga's step
    contracts under their subjects, each with its compatibility rule.
    """
    from processors.runner import provision

    settings = _topic_settings(partitions, replication_factor, min_insync_replicas)
    versions = load_saga(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    with progress("creating topics"):
        report = provision(versions, kafka, settings)
    subjects: list[dict[str, Any]] = []
    if kafka.schema_registry_url:
        from schemas.registry import SchemaRegistryClient

        registry = SchemaRegistryClient(kafka.schema_registry_url, timeout_s=5.0)
        contracts = contracts_of(versions, kafka.topic_prefix)
        with progress("registering step contracts"):
            verdicts = register_contracts(registry, contracts, schema_compatibility.upper())
        subjects = [{"subject": v.subject, "id": v.schema_id} for v in verdicts]
    if output == "json":
        echo_json(
            {
                "created": list(report.created),
                "existing": list(report.existing),
                "schemas": subjects,
            }
        )
        return
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")
    for subject in subjects:
        click.echo(f"schema   {subject['subject']} (id {subject['id']})")


@topics.command("describe")
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@_topic_settings_options
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
@bootstrap_option
@prefix_option
def topics_describe(
    saga_ref: str, partitions: int | None, replication_factor: int | None,
    min_insync_replicas: int | None, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Show each topic of MODULE:SAGA as the cluster has it, against what it should be.

    Lists partitions, replication factor, min.insync.replicas, cleanup policy and
    retention of every topic of the saga and its queues, and whether each matches the
    spec that `sagas topics create` (with the same options) provisions. Exits with
    status 1 when a topic is missing or differs.
    """
    from processors.runner import saga_specs
    from topics.admin import TopicAdminError, admin_client
    from topics.description import describe_topics

    settings = _topic_settings(partitions, replication_factor, min_insync_replicas)
    versions = load_saga(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    timeout = kafka.connect_timeout
    try:
        client = admin_client(kafka.client_config())
        specs = saga_specs(client, versions, kafka, settings, timeout_s=timeout)
        described = describe_topics(client, specs, timeout_s=timeout)
    except TopicAdminError as exc:
        if exc.retriable:
            raise click.ClickException(
                f"cannot reach Kafka at {kafka.bootstrap_servers} within {timeout:g} s"
                f" ({exc.message})"
            ) from exc
        raise click.ClickException(str(exc)) from exc
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    if output == "json":
        click.echo(json.dumps([_description_json(d) for d in described], indent=2))
    else:
        _print_descriptions(described)
    if not all(d.matches for d in described):
        raise SystemExit(1)


_COLUMNS = ("partitions", "replication.factor", "min.insync.replicas", "cleanup.policy",
            "retention.ms")  # fmt: skip


def _description_json(description: TopicDescription) -> dict[str, Any]:
    return {
        "topic": description.name,
        "exists": description.exists,
        "matches": description.matches,
        "settings": {
            s.name: {"actual": s.actual, "expected": s.expected, "matches": s.matches}
            for s in description.settings
        },
    }


def _print_descriptions(described: list[TopicDescription]) -> None:
    rows = [("topic", *(c.split(".")[0] if c != "min.insync.replicas" else "min.insync"
                        for c in _COLUMNS), "spec")]  # fmt: skip
    for description in described:
        cells = []
        for column in _COLUMNS:
            setting = description.setting(column)
            value = setting.actual if setting.actual is not None else "-"
            if not setting.matches:
                value = f"{value} (want {setting.expected})"
            cells.append(value)
        verdict = (
            "ok" if description.matches else ("MISSING" if not description.exists else "DIFFERS")
        )
        rows.append((description.name, *cells, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
