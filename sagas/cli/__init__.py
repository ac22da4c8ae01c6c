"""The ``sagas`` command line: local Kafka, workers, topics, and workflows."""

from __future__ import annotations

from typing import Any

import click
from confluent_kafka import KafkaException

from sagas.cli.dashboard import dashboard
from sagas.cli.dev import dev
from sagas.cli.dlq import dlq
from sagas.cli.exit_codes import EPILOG, command_error
from sagas.cli.lag import lag
from sagas.cli.log_setup import configure_logging
from sagas.cli.replay import replay, reset
from sagas.cli.schemas import schemas
from sagas.cli.topics import topics
from sagas.cli.visibility import describe, list_workflows, query
from sagas.cli.worker import worker
from sagas.cli.workflows import (
    cancel,
    history,
    result,
    signal,
    start,
    status,
    terminate,
    update,
)
from sagas.errors import SagaError


class _Commands(click.Group):
    """Turns a framework or Kafka error of any command into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SagaError, KafkaException) as exc:
            raise command_error(exc) from exc


@click.group(cls=_Commands, epilog=EPILOG)
@click.version_option(package_name="kafka-sagas", prog_name="sagas")
def main() -> None:
    """kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone."""
    # Commands that run for long (worker, dev broker) log more; the others log warnings
    # only, and librdkafka's lines not at all: a Kafka failure is their one error line.
    configure_logging("warning", kafka_level="off")


for command in (
    dev,
    worker,
    topics,
    start,
    status,
    result,
    signal,
    update,
    cancel,
    terminate,
    history,
    describe,
    list_workflows,
    query,
    dlq,
    lag,
    dashboard,
    schemas,
    replay,
    reset,
):
    main.add_command(command)
