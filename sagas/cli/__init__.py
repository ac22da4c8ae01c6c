"""The ``sagas`` command line: local Kafka, workers, topics, and workflows."""

from __future__ import annotations

import click

from sagas.cli.dashboard import dashboard
from sagas.cli.dev import dev
from sagas.cli.dlq import dlq
from sagas.cli.lag import lag
from sagas.cli.schemas import schemas
from sagas.cli.topics import topics
from sagas.cli.visibility import describe, list_workflows, query
from sagas.cli.worker import worker
from sagas.cli.workflows import cancel, history, result, signal, start, status, terminate


@click.group()
def main() -> None:
    """kafka-sagas: sagas declared in Python, run exactly-once on Apache Kafka alone."""


for command in (
    dev,
    worker,
    topics,
    start,
    status,
    result,
    signal,
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
):
    main.add_command(command)
