"""``sagas worker`` and ``sagas topics``: run a saga's processors, provision its topics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sagas.cli.loading import bootstrap_option, kafka_settings, load_saga, prefix_option
from sagas.cli.stopping import stop_on_signals
from sagas.errors import SagaError

if TYPE_CHECKING:
    from topics.description import TopicDescription
    from topics.specs import TopicSettings


@click.command()
@click.argument("saga_ref", metavar="MODULE:SAGA")
@click.option(
    "--role",
    type=click.Choice(["all", "processor", "steps"]),
    default="all",
    show_default=True,
    help="Run the saga processor, the step worker, or both.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Serve only these queues (default: every queue of the saga).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".sagas-state"),
    show_default=True,
    help="Where the processor keeps its RocksDB state, and each part its instance id.",
)
@click.option(
    "--store",
    type=click.Choice(["rocksdb", "memory"]),
    default="rocksdb",
    show_default=True,
    help="State backend of the saga processor.",
)
@click.option(
    "--instance-id",
    default=None,
    help="Stable id of this process across restarts (default: one kept in --state-dir,"
    " made from the host, the state directory and the role).",
)
@click.option(
    "--metrics-port",
    type=int,
    envvar="SAGAS_METRICS_PORT",
    default=None,
    help="Serve Prometheus metrics on this port [env SAGAS_METRICS_PORT].",
)
@click.option(
    "--dispatch-objective-ms",
    type=click.IntRange(min=1),
    envvar="SAGAS_DISPATCH_OBJECTIVE_MS",
    default=None,
    help="Dispatch objective (p99, ms) of every step served here, over the saga's own"
    " [env SAGAS_DISPATCH_OBJECTIVE_MS].",
)
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing topics at start.",
)
@click.option(
    "--allow-missing-versions",
    is_flag=True,
    default=False,
    help="Start even if workflows are in flight on saga versions this worker lacks.",
)
@bootstrap_option
@prefix_option
def worker(
    saga_ref: str, role: str, queues: tuple[str, ...], state_dir: Path, store: str,
    instance_id: str | None, metrics_port: int | None, dispatch_objective_ms: int | None,
    create_topics: bool,
    allow_missing_versions: bool, bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Run the saga processor and/or step worker of MODULE:SAGA until Ctrl-C or SIGTERM."""
    from prometheus_client import CollectorRegistry, start_http_server

    from processors.metrics import Metrics, PrometheusMetrics
    from processors.runner import Role, WorkerRunner, provision
    from processors.settings import ProcessorSettings, WorkerSettings
    from processors.version_check import MissingVersionsError, check_versions

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    versions = load_saga(saga_ref)
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    metrics: Metrics = Metrics()
    if metrics_port is not None:
        registry = CollectorRegistry()
        metrics = PrometheusMetrics(registry)
        start_http_server(metrics_port, registry=registry)
    try:
        if create_topics:
            provision(versions, kafka)
        try:
            check_versions(versions, kafka)
        except MissingVersionsError as exc:
            if not allow_missing_versions:
                raise
            click.echo(f"Warning: {exc}", err=True)
        runner = WorkerRunner(
            versions,
            kafka,
            role=Role(role),
            queues=queues or None,
            processor_settings=ProcessorSettings(
                state_dir=state_dir,
                store="memory" if store == "memory" else "rocksdb",
                instance_id=instance_id,
            ),
            worker_settings=WorkerSettings(
                instance_id=instance_id,
                state_dir=state_dir,
                dispatch_objective_ms=dispatch_objective_ms,
            ),
            metrics=metrics,
            lag_interval=timedelta(seconds=5) if metrics_port is not None else None,
        ).start()
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = stop_on_signals()
    versions_text = ", ".join(str(v) for v in sorted(versions.plans))
    click.echo(f"Running saga {versions.name!r} (versions {versions_text}) as {role}.", err=True)
    while not stop.wait(0.5):
        if not runner.alive:
            break
    runner.stop()
    try:
        runner.raise_errors()
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc


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
@click.argument("saga_ref", metavar="MODULE:SAGA")
@_topic_settings_options
@bootstrap_option
@prefix_option
def topics_create(
    saga_ref: str, partitions: int | None, replication_factor: int | None,
    min_insync_replicas: int | None, bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Create the topics of MODULE:SAGA that are missing (idempotent)."""
    from processors.runner import provision

    versions = load_saga(saga_ref)
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    settings = _topic_settings(partitions, replication_factor, min_insync_replicas)
    try:
        report = provision(versions, kafka, settings)
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")


@topics.command("describe")
@click.argument("saga_ref", metavar="MODULE:SAGA")
@_topic_settings_options
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds to wait for Kafka before giving up.",
)
@bootstrap_option
@prefix_option
def topics_describe(
    saga_ref: str, partitions: int | None, replication_factor: int | None,
    min_insync_replicas: int | None, output: str, timeout: float,
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

    versions = load_saga(saga_ref)
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    settings = _topic_settings(partitions, replication_factor, min_insync_replicas)
    config: dict[str, Any] = {**kafka.client_config(), "logger": _quiet_librdkafka()}
    try:
        client = admin_client(config)
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


def _quiet_librdkafka() -> logging.Logger:
    # librdkafka reports every refused connection on stderr; the command says it in one line.
    logger = logging.getLogger("sagas.cli.librdkafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


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
