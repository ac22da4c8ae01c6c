"""``sagas dev``: a real Apache Kafka and schema registry on this machine, for development."""

from __future__ import annotations

from pathlib import Path

import click

from sagas.cli.log_setup import configure_logging, log_format_option, log_level_option
from sagas.cli.stopping import stop_on_signals
from sagas.errors import SagaError


@click.group()
def dev() -> None:
    """Tools for local development."""


@dev.command("broker")
@click.option(
    "--nodes",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="One broker, or a three-broker cluster (replication 3, min.insync 2).",
)
@click.option(
    "--port",
    type=int,
    default=9092,
    show_default=True,
    help="Port of the first broker; further nodes and controllers take the next ones.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep the broker's data here across runs (default: a temporary directory).",
)
@log_level_option
@log_format_option
def dev_broker(
    nodes: str, port: int, data_dir: Path | None, log_level: str, log_format: str
) -> None:
    """Run a real Apache Kafka (KRaft) on 127.0.0.1 until Ctrl-C."""
    from sagas.devkafka import LocalKafka, kafka_version
    from sagas.errors import SagaError

    configure_logging(log_level, log_format)

    stop = stop_on_signals()
    cluster = LocalKafka(nodes=int(nodes), base_port=port, data_dir=data_dir)
    click.echo(f"Starting Apache Kafka {kafka_version()} ({nodes} node(s))...", err=True)
    try:
        cluster.start()
    except SagaError:
        cluster.stop()
        raise
    click.echo(f"Kafka is ready: SAGAS_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}")
    click.echo("Press Ctrl-C to stop.", err=True)
    stop.wait()
    click.echo("Stopping Kafka...", err=True)
    cluster.stop()


@dev.command("registry")
@click.option(
    "--port",
    type=int,
    default=8081,
    show_default=True,
    help="Port to serve on (0: any free port).",
)
def dev_registry(port: int) -> None:
    """Run Apicurio Registry (Confluent-compatible API, in-memory) on 127.0.0.1 until Ctrl-C."""
    from sagas.devkafka.apicurio import LocalSchemaRegistry, apicurio_version

    stop = stop_on_signals()
    registry = LocalSchemaRegistry(
        port=port or None, progress=lambda line: click.echo(line, err=True)
    )
    click.echo(f"Starting Apicurio Registry {apicurio_version()}...", err=True)
    try:
        registry.start()
    except SagaError as exc:
        registry.stop()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Schema registry is ready: SAGAS_SCHEMA_REGISTRY_URL={registry.url}")
    click.echo("Press Ctrl-C to stop.", err=True)
    stop.wait()
    click.echo("Stopping the schema registry...", err=True)
    registry.stop()
