"""``sagas dashboard``: serve the built-in web dashboard of one or more sagas."""

from __future__ import annotations

import logging
import socket
from typing import Any

import click

from sagas.cli.loading import bootstrap_option, kafka_settings, load_saga, prefix_option
from sagas.config import KafkaSettings
from sagas.errors import SagaError
from sagas.kafka_logs import admin_client_config

PROBE_TIMEOUT_S = 5.0


@click.command()
@click.argument("saga_refs", metavar="MODULE[:SAGA]...", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0: any free one).")
@click.option(
    "--token",
    envvar="SAGAS_DASHBOARD_TOKEN",
    default=None,
    help="Token every request must carry; required beyond 127.0.0.1 [env SAGAS_DASHBOARD_TOKEN].",
)
@click.option(
    "--prometheus-url",
    default=None,
    help="Prometheus that scrapes the workers, for the SLO panel (e.g. http://127.0.0.1:9090).",
)
@click.option("--page-size", type=int, default=50, show_default=True, help="Workflows per page.")
@bootstrap_option
@prefix_option
def dashboard(
    saga_refs: tuple[str, ...], host: str, port: int, token: str | None,
    prometheus_url: str | None, page_size: int,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Serve a web dashboard of MODULE:SAGA...: workflows by status with search, each
    workflow's history as a timeline, consumer lag, the dead-letter queue with redrive,
    dispatch-latency SLOs (with --prometheus-url), and cancel/terminate/redrive actions,
    each behind a confirmation page.

    It listens on 127.0.0.1 unless --host says otherwise, and refuses to listen beyond
    loopback without a --token, which every request then has to carry.
    """
    import uvicorn

    from sagas.dashboard import DashboardSettings, create_app
    from sagas.dashboard.kafka_sources import kafka_sources, open_client

    try:
        settings = DashboardSettings(
            host=host, port=port, token=token, prometheus_url=prometheus_url, page_size=page_size
        )
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    sagas = [load_saga(ref) for ref in saga_refs]
    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    listener = _listen(host, port)
    try:
        _probe(kafka)
    except click.ClickException:
        listener.close()
        raise
    client = open_client(kafka)
    try:
        app = create_app(kafka_sources(kafka, sagas, client), settings)
        address = listener.getsockname()
        shown = f"[{address[0]}]" if ":" in address[0] else address[0]
        names = ", ".join(v.name for v in sagas)
        click.echo(f"Serving the dashboard of {names} at http://{shown}:{address[1]}/", err=True)
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        try:
            client.close()
        except SagaError as exc:
            click.echo(f"Closing the Kafka client: {exc}", err=True)


def _probe(kafka: KafkaSettings) -> None:
    """Fail at once, in one line, when Kafka does not answer (librdkafka's logs kept out)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("sagas.dashboard.librdkafka")
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    config: dict[str, Any] = {**kafka.client_config(), "logger": quiet}
    admin = AdminClient(admin_client_config(config))
    try:
        admin.list_topics(timeout=PROBE_TIMEOUT_S)
    except KafkaException as exc:
        raise click.ClickException(
            f"Kafka at {kafka.bootstrap_servers} did not answer within {PROBE_TIMEOUT_S:g} s"
        ) from exc


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is served, so a busy port fails plainly."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(info[0], socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(info[4])
        listener.listen(128)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    return listener
