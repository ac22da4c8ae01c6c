"""``sagas lag``: how far behind each consumer group of a saga is, in records and seconds."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import click

from sagas.cli.loading import bootstrap_option, kafka_settings, load_saga, prefix_option
from sagas.errors import SagaError

if TYPE_CHECKING:
    from topics.saga_groups import GroupLagTime

_KAFKA_TIMEOUT_S = 5.0


@click.command()
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON (one object per group) for scripts.",
)
@click.option(
    "--watch",
    "watch_s",
    type=click.FloatRange(min=0.5),
    default=None,
    metavar="SECONDS",
    help="Print again every SECONDS until Ctrl-C.",
)
@bootstrap_option
@prefix_option
def lag(
    saga_ref: str, output: str, watch_s: float | None, bootstrap_servers: str | None,
    topic_prefix: str | None,
) -> None:  # fmt: skip
    """Show how far behind every consumer group of MODULE:SAGA is.

    For the saga processor's group and each step worker group, per partition: the
    records not processed yet, and the age in seconds of the oldest of them (0 when
    caught up). Groups with no live member are shown too: their lag is what grows.
    """
    from topics.naming import TopicNames
    from topics.saga_groups import saga_lag

    versions = load_saga(saga_ref)
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    names = TopicNames(versions.name, kafka.topic_prefix)
    # librdkafka's own lines (refused connections...) stay out of the terminal; the
    # failure is reported once, as one line.
    quiet = logging.getLogger("sagas.cli.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {
        **kafka.client_config(),
        "logger": quiet,
        "socket.connection.setup.timeout.ms": int(_KAFKA_TIMEOUT_S * 1000),
    }
    while True:
        try:
            groups = saga_lag(config, names, versions.queues, timeout_s=_KAFKA_TIMEOUT_S)
        except SagaError as exc:
            raise click.ClickException(
                f"cannot read the lag of saga {versions.name!r} from {kafka.bootstrap_servers}:"
                f" {exc}"
            ) from exc
        if output == "json":
            click.echo(json.dumps([_as_json(group) for group in groups]))
        else:
            click.echo(_table(groups))
        if watch_s is None:
            return
        time.sleep(watch_s)
        click.echo()


def _as_json(group: GroupLagTime) -> dict[str, Any]:
    return {
        "saga": group.saga,
        "group": group.group,
        "role": group.role,
        "live": group.live,
        "records": group.records,
        "age_seconds": round(group.age_seconds, 3),
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "end_offset": p.end_offset,
                "records": p.records,
                "age_seconds": round(p.age_seconds, 3),
            }
            for p in group.partitions
        ],
    }


def _table(groups: list[GroupLagTime]) -> str:
    header = ("GROUP", "ROLE", "LIVE", "TOPIC", "PARTITION", "COMMITTED", "END", "RECORDS", "AGE")
    rows = [header]
    for group in groups:
        for p in group.partitions:
            rows.append(
                (
                    group.group,
                    group.role,
                    "yes" if group.live else "no",
                    p.topic,
                    str(p.partition),
                    "-" if p.committed is None else str(p.committed),
                    str(p.end_offset),
                    str(p.records),
                    f"{p.age_seconds:.1f}s",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
