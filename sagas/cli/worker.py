"""``sagas worker`` and ``sagas topics``: run a saga's processors, provision its topics."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import click

from sagas.cli.contracts import COMPATIBILITY_LEVELS, contracts_of, register_contracts
from sagas.cli.loading import bootstrap_option, kafka_settings, load_saga, prefix_option
from sagas.cli.stopping import stop_on_signals
from sagas.errors import SagaError


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
    help="Where the processor keeps its RocksDB state.",
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
    help="Stable id of this process across restarts (fences its old transactions).",
)
@click.option(
    "--metrics-port",
    type=int,
    envvar="SAGAS_METRICS_PORT",
    default=None,
    help="Serve Prometheus metrics on this port [env SAGAS_METRICS_PORT].",
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
    instance_id: str | None, metrics_port: int | None, create_topics: bool,
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
            worker_settings=WorkerSettings(instance_id=instance_id),
            metrics=metrics,
            lag_interval=timedelta(seconds=15) if metrics_port is not None else None,
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


@topics.command("create")
@click.argument("saga_ref", metavar="MODULE:SAGA")
@click.option("--partitions", type=int, default=None, help="Partitions of each topic.")
@click.option("--replication-factor", type=int, default=None, help="Replicas of each partition.")
@click.option(
    "--min-insync-replicas",
    type=int,
    default=None,
    help="Replicas that must acknowledge a write (with replication > 1).",
)
@click.option(
    "--schema-compatibility",
    type=click.Choice(COMPATIBILITY_LEVELS, case_sensitive=False),
    envvar="SAGAS_SCHEMA_COMPATIBILITY",
    default="BACKWARD",
    show_default=True,
    help="Compatibility rule of each step contract's subject [env SAGAS_SCHEMA_COMPATIBILITY].",
)
@bootstrap_option
@prefix_option
def topics_create(
    saga_ref: str, partitions: int | None, replication_factor: int | None,
    min_insync_replicas: int | None, schema_compatibility: str, bootstrap_servers: str | None,
    topic_prefix: str | None,
) -> None:  # fmt: skip
    """Create the topics of MODULE:SAGA that are missing (idempotent).

    With a schema registry (SAGAS_SCHEMA_REGISTRY_URL), also register the saga's step
    contracts under their subjects, each with its compatibility rule.
    """
    from processors.runner import provision
    from topics.specs import TopicSettings

    versions = load_saga(saga_ref)
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
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
        report = provision(versions, kafka, TopicSettings(**overrides))
    except (SagaError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for name in report.created:
        click.echo(f"created  {name}")
    for name in report.existing:
        click.echo(f"exists   {name}")
    if kafka.schema_registry_url:
        from schemas.registry import SchemaRegistryClient

        try:
            registry = SchemaRegistryClient(kafka.schema_registry_url, timeout_s=5.0)
            contracts = contracts_of(versions, kafka.topic_prefix)
            verdicts = register_contracts(registry, contracts, schema_compatibility.upper())
        except SagaError as exc:
            raise click.ClickException(str(exc)) from exc
        for verdict in verdicts:
            click.echo(f"schema   {verdict.subject} (id {verdict.schema_id})")
